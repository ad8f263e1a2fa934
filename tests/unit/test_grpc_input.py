"""Finding a NUL in any string field of a request, at any depth (services/common/grpc_input.py)."""

from tatame.billing.v1 import billing_pb2

from services.common.grpc_input import nul_field


def test_a_clean_message_has_no_nul_field() -> None:
    request = billing_pb2.CreateCustomerRequest(email="ana@example.com", name="Ana")
    assert nul_field(request) is None


def test_a_nul_in_a_repeated_message_is_found_by_its_path() -> None:
    request = billing_pb2.ApplyStripeEventsRequest(
        events=[
            billing_pb2.ApplyStripeEventRequest(event_id="evt_1", type="customer.updated"),
            billing_pb2.ApplyStripeEventRequest(event_id="evt_\x00", type="customer.updated"),
        ]
    )
    assert nul_field(request) == "events[1].event_id"


def test_bytes_fields_may_hold_nul() -> None:
    request = billing_pb2.ApplyStripeEventRequest(event_id="evt_1", payload=b"\x00")
    assert nul_field(request) is None


def test_a_nul_in_a_map_key_or_value_or_a_repeated_string_is_found() -> None:
    assert nul_field(billing_pb2.Plan(metadata={"k\x00": "v"})) == "metadata[key]"
    assert nul_field(billing_pb2.Plan(metadata={"k": "v\x00"})) == "metadata['k']"
    assert nul_field(billing_pb2.Plan(features=["a", "b\x00"])) == "features[1]"
