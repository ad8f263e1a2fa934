"""The embedded Postgres refuses a data folder made by another major version, with the remedy."""

from pathlib import Path

import pytest
from tatame_devstack.postgres import embedded_postgres


def test_a_data_folder_of_another_postgres_major_version_is_refused_with_the_remedy(
    tmp_path: Path,
) -> None:
    (tmp_path / "PG_VERSION").write_text("16\n")  # what pgserver's Postgres 16 left in .devdata/
    refused = pytest.raises(RuntimeError, match=r"holds Postgres 16 data.*Delete that folder")
    with refused, embedded_postgres(tmp_path):
        pytest.fail("the server must not start on another major version's data")
