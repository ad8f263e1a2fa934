"""What a Checkout Session collects for Stripe Tax, checked as Stripe checks it for an existing
customer: `automatic_tax[enabled]` needs a customer already located or
`customer_update[address]=auto` (the address typed on the page is saved to the customer);
`tax_id_collection[enabled]` needs `customer_update[name]=auto`."""

from dataclasses import dataclass
from typing import Any

from localstripe.errors import UserError
from localstripe.resources import Customer

from tatame_devstack.stripe_emulator.params import as_bool, as_str, param_error, reject_unknown
from tatame_devstack.stripe_emulator.tax import (
    automatic_tax_enabled,
    customer_location,
    location_invalid,
    location_of,
)

ADDRESS_FIELDS = ("city", "country", "line1", "line2", "postal_code", "state")


@dataclass(frozen=True, slots=True)
class TaxCollection:
    automatic: bool = False
    billing_address_collection: str | None = None
    tax_ids: bool = False
    saves_address: bool = False
    saves_name: bool = False

    def collect(self, customer_id: str, billing_details: Any) -> None:
        """Take what the customer typed on the page (`billing_details[address]`, `[name]`):
        saved to the customer as `customer_update` says; refused as the page would refuse it
        (a required address missing, one Stripe Tax cannot locate)."""
        details = dict(billing_details) if isinstance(billing_details, dict) else {}
        address = details.pop("address", None)
        name = details.pop("name", None)
        reject_unknown(details, parent="billing_details")
        if address is not None:
            if not isinstance(address, dict) or not set(address) <= set(ADDRESS_FIELDS):
                raise param_error("billing_details[address]", "Invalid address")
            address = {
                key: as_str(f"billing_details[address][{key}]", value)
                for key, value in address.items()
            }
        if self.billing_address_collection == "required" and address is None:
            raise param_error("billing_details[address]", "The page requires a billing address.")
        if self.automatic and address is not None and location_of(address) is None:
            raise location_invalid("billing_details[address]")
        updates: dict[str, Any] = {}
        if self.saves_address and address is not None:
            updates["address"] = address
        if self.saves_name and name is not None:
            updates["name"] = as_str("billing_details[name]", name)
        if updates:
            Customer._api_update(customer_id, **updates)
        if self.automatic and customer_location(customer_id) is None:
            raise location_invalid()


def _customer_update(value: Any) -> tuple[bool, bool]:
    """`customer_update[address|name|shipping]`: whether the address and the name are saved."""
    if value is None:
        return False, False
    if not isinstance(value, dict):
        raise param_error("customer_update", "Invalid customer_update: expected a hash")
    given = dict(value)
    choices = ("auto", "never")
    address = as_str("customer_update[address]", given.pop("address", "never"), choices=choices)
    name = as_str("customer_update[name]", given.pop("name", "never"), choices=choices)
    as_str("customer_update[shipping]", given.pop("shipping", "never"), choices=("never",))
    reject_unknown(given, parent="customer_update")
    return address == "auto", name == "auto"


def tax_collection(
    customer_id: str,
    *,
    automatic_tax: Any,
    billing_address_collection: Any,
    customer_update: Any,
    tax_id_collection: Any,
) -> TaxCollection:
    """The checked tax parameters of a Checkout Session for an existing customer."""
    automatic = automatic_tax_enabled("automatic_tax", automatic_tax)
    collection = None  # Stripe's default (`auto`), shown as null
    if billing_address_collection is not None:
        collection = as_str(
            "billing_address_collection", billing_address_collection, choices=("auto", "required")
        )
    saves_address, saves_name = _customer_update(customer_update)
    tax_ids = False
    if tax_id_collection is not None:
        if not isinstance(tax_id_collection, dict):
            raise param_error("tax_id_collection", "Invalid tax_id_collection: expected a hash")
        given = dict(tax_id_collection)
        tax_ids = as_bool("tax_id_collection[enabled]", given.pop("enabled", None))
        as_str(
            "tax_id_collection[required]",
            given.pop("required", "never"),
            choices=("if_supported", "never"),
        )
        reject_unknown(given, parent="tax_id_collection")
    if automatic and not saves_address and customer_location(customer_id) is None:
        raise UserError(
            400,
            "Automatic tax calculation in Checkout requires a valid address on the Customer. "
            "Add a valid address to the Customer or set either `customer_update[address]` or "
            "`customer_update[shipping]` to 'auto' to save the address entered in Checkout to "
            "the Customer.",
            {"param": "customer_update[address]"},
        )
    if tax_ids and not saves_name:
        raise param_error(
            "customer_update[name]",
            "tax_id_collection requires updating business name on the customer. To enable tax "
            "ID collection for an existing customer, please set `customer_update[name]` to "
            "`auto`.",
        )
    return TaxCollection(
        automatic=automatic,
        billing_address_collection=collection,
        tax_ids=tax_ids,
        saves_address=saves_address,
        saves_name=saves_name,
    )
