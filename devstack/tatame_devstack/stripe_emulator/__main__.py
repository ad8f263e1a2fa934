"""`python -m tatame_devstack.stripe_emulator`: serve the emulator."""

from tatame_devstack.stripe_emulator.app import main

main()
