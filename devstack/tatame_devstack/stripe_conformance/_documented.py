"""What stripe-python's types cannot say about which fields a response carries, written down.

The SDK types every declared field as present (`Optional` means "may be null", not "may be
absent"). Stripe's API reference and OpenAPI spec know two kinds of fields that are not always
in a response:

- *includable* fields, left out unless the request asks for them with `expand[]` (the reference
  says "This field is not included by default. To include it in the response, expand the ...
  field"; https://docs.stripe.com/api/expanding_objects calls them fields "that aren't included
  in responses by default");
- fields the spec does not mark `required` on the object: sent only in some contexts (on an
  invoice preview, for one payment method type, on an `*.updated` event only, ...).

Both lists below are limited to the objects this project touches; the checker derives the rest
(see `responses.py`: hashes keyed by a `type` value, error-shaped hashes). Sources: Stripe's API
reference for each object and the `required` lists of Stripe's OpenAPI spec as published in the
typed SDKs (the nearest published version to `2026-10-28.endive`, `2026-07-29.dahlia`). A test
proves every name here is a field the SDK declares, so a typo cannot silently widen the rules.
"""

# object name -> fields present only when expanded.
INCLUDABLE: dict[str, frozenset[str]] = {
    "charge": frozenset({"refunds"}),
    "checkout.session": frozenset({"line_items"}),
    "coupon": frozenset({"applies_to", "currency_options"}),
    "customer": frozenset(
        {"cash_balance", "invoice_credit_balance", "sources", "subscriptions", "tax", "tax_ids"}
    ),
    "invoice": frozenset({"confirmation_secret", "payments"}),
    "payment_link": frozenset({"line_items"}),
    "plan": frozenset({"tiers"}),
    "price": frozenset({"currency_options", "tiers"}),
    "quote": frozenset({"line_items"}),
}

ALL_FIELDS = "*"

# SDK class (module.qualname) -> fields Stripe may leave out ("*": every field of the class).
# The spec's non-required fields of the objects in scope, less what `responses.py` derives.
# Not taken from the spec: the customer's address, name, phone and the like, which the spec
# leaves optional but Stripe returns (null when unset) on every customer.
NOT_ALWAYS_RETURNED: dict[str, frozenset[str] | str] = {
    "stripe._charge.Charge": frozenset(
        {"authorization_code", "level3", "presentment_details", "radar_options", "transfer"}
    ),
    "stripe._charge.Charge.FraudDetails": frozenset({"stripe_report", "user_report"}),
    "stripe._charge.Charge.Level3": frozenset(
        {"customer_reference", "shipping_address_zip", "shipping_amount", "shipping_from_zip"}
    ),
    "stripe._charge.Charge.Outcome": frozenset({"risk_level", "risk_score", "rule"}),
    "stripe._charge.Charge.RadarOptions": frozenset({"session"}),
    "stripe._charge.Charge.Shipping": frozenset(
        {"address", "carrier", "name", "phone", "tracking_number"}
    ),
    "stripe._customer.Customer": frozenset(
        {"business_name", "customer_account", "individual_name"}
    ),
    "stripe._customer.Customer.Shipping": frozenset(
        {"address", "carrier", "name", "phone", "tracking_number"}
    ),
    "stripe._dispute.Dispute": frozenset({"network_reason_code", "payment_method_details"}),
    "stripe._dispute.Dispute.Evidence.EnhancedEvidence": frozenset(
        {"mastercard_compliance", "visa_compelling_evidence_3", "visa_compliance"}
    ),
    "stripe._dispute.Dispute.EvidenceDetails.EnhancedEligibility": frozenset(
        {"mastercard_compliance", "visa_compelling_evidence_3", "visa_compliance"}
    ),
    "stripe._ephemeral_key.EphemeralKey": frozenset({"secret"}),
    "stripe._event.Event": frozenset({"account", "context"}),  # Connect and organization events
    "stripe._event.Event.Data": frozenset({"previous_attributes"}),
    "stripe._invoice.Invoice": frozenset(
        {
            "amount_paid_off_stripe",
            "auto_advance",
            "customer_tax_ids",
            "hosted_invoice_url",
            "invoice_pdf",
            "threshold_reason",
        }
    ),
    "stripe._invoice.Invoice.AutomaticTax.Liability": frozenset({"account"}),
    "stripe._invoice.Invoice.CustomerShipping": frozenset(
        {"address", "carrier", "name", "phone", "tracking_number"}
    ),
    "stripe._invoice.Invoice.Issuer": frozenset({"account"}),
    "stripe._invoice.Invoice.Parent.SubscriptionDetails": frozenset(
        {"subscription_proration_date"}
    ),
    "stripe._invoice.Invoice.ShippingCost": frozenset({"taxes"}),
    "stripe._invoice.Invoice.ShippingDetails": frozenset(
        {"address", "carrier", "name", "phone", "tracking_number"}
    ),
    "stripe._invoice.Invoice.TotalPretaxCreditAmount": frozenset(
        {"credit_balance_transaction", "discount"}
    ),
    "stripe._invoice_item.InvoiceItem": frozenset({"net_amount", "proration_details"}),
    "stripe._invoice_item.InvoiceItem.Parent.SubscriptionDetails": frozenset({"subscription_item"}),
    "stripe._invoice_item.InvoiceItem.ProrationDetails.CreditedItems": frozenset({"invoice_item"}),
    "stripe._invoice_line_item.InvoiceLineItem.PretaxCreditAmount": frozenset(
        {"credit_balance_transaction", "discount"}
    ),
    "stripe._invoice_payment.InvoicePayment.Payment": frozenset(
        {"charge", "payment_intent", "payment_record"}
    ),
    "stripe._payment_intent.PaymentIntent": frozenset(
        {
            "allowed_payment_method_types",
            "amount_details",
            "hooks",
            "payment_details",
            "presentment_details",
            "transfer_data",
        }
    ),
    "stripe._payment_intent.PaymentIntent.AmountDetails": frozenset(
        {"discount_amount", "error", "line_items", "shipping", "tax", "tip"}
    ),
    "stripe._payment_intent.PaymentIntent.AmountDetails.Tip": frozenset({"amount"}),
    "stripe._payment_intent.PaymentIntent.AutomaticPaymentMethods": frozenset({"allow_redirects"}),
    "stripe._payment_intent.PaymentIntent.Hooks": frozenset({"inputs"}),
    "stripe._payment_intent.PaymentIntent.Hooks.Inputs": frozenset({"tax"}),
    "stripe._payment_intent.PaymentIntent.NextAction": frozenset({"use_stripe_sdk"}),
    "stripe._payment_intent.PaymentIntent.NextAction.DisplayBankTransferInstructions": frozenset(
        {"financial_addresses"}
    ),
    "stripe._payment_intent.PaymentIntent.NextAction.DisplayBankTransferInstructions.FinancialAddress": frozenset(
        {"supported_networks"}
    ),
    "stripe._payment_intent.PaymentIntent.NextAction.KonbiniDisplayDetails.Stores.Familymart": frozenset(
        {"confirmation_number"}
    ),
    "stripe._payment_intent.PaymentIntent.NextAction.KonbiniDisplayDetails.Stores.Lawson": frozenset(
        {"confirmation_number"}
    ),
    "stripe._payment_intent.PaymentIntent.NextAction.KonbiniDisplayDetails.Stores.Ministop": frozenset(
        {"confirmation_number"}
    ),
    "stripe._payment_intent.PaymentIntent.NextAction.KonbiniDisplayDetails.Stores.Seicomart": frozenset(
        {"confirmation_number"}
    ),
    "stripe._payment_intent.PaymentIntent.NextAction.PixDisplayQrCode": frozenset(
        {"data", "expires_at", "hosted_instructions_url", "image_url_png", "image_url_svg"}
    ),
    "stripe._payment_intent.PaymentIntent.PaymentMethodOptions": ALL_FIELDS,  # the enabled payment method types
    "stripe._payment_intent.PaymentIntent.Processing.Card": frozenset({"customer_notification"}),
    "stripe._payment_intent.PaymentIntent.Shipping": frozenset(
        {"address", "carrier", "name", "phone", "tracking_number"}
    ),
    "stripe._payment_intent.PaymentIntent.TransferData": frozenset(
        {"amount", "description", "metadata", "payment_data"}
    ),
    "stripe._payment_intent.PaymentIntent.TransferData.PaymentData": frozenset(
        {"description", "metadata"}
    ),
    "stripe._payment_method.PaymentMethod": frozenset({"allow_redisplay"}),
    "stripe._payment_method.PaymentMethod.Bizum": frozenset({"buyer_id"}),
    "stripe._payment_method.PaymentMethod.Blik": frozenset({"buyer_id"}),
    "stripe._payment_method.PaymentMethod.Card": frozenset(
        {"description", "fingerprint", "iin", "issuer"}
    ),
    "stripe._payment_method.PaymentMethod.CardPresent": frozenset(
        {"description", "iin", "issuer", "wallet"}
    ),
    "stripe._payment_method.PaymentMethod.InteracPresent": frozenset(
        {"description", "iin", "issuer"}
    ),
    "stripe._payment_method.PaymentMethod.Klarna": frozenset({"dob"}),
    "stripe._payment_method.PaymentMethod.Link": frozenset({"persistent_token"}),
    "stripe._payment_method.PaymentMethod.Pix": frozenset({"fingerprint"}),
    "stripe._payment_method.PaymentMethod.RadarOptions": frozenset({"session"}),
    "stripe._payment_method.PaymentMethod.UsBankAccount.StatusDetails": frozenset({"blocked"}),
    "stripe._price.Price.CurrencyOptions": frozenset({"tiers"}),
    "stripe._product.Product": frozenset(
        {"default_price", "statement_descriptor", "tax_code", "unit_label"}
    ),
    "stripe._product.Product.MarketingFeature": frozenset({"name"}),
    "stripe._refund.Refund": frozenset(
        {
            "description",
            "destination_details",
            "failure_balance_transaction",
            "failure_reason",
            "instructions_email",
            "next_action",
            "pending_reason",
            "presentment_details",
        }
    ),
    "stripe._refund.Refund.DestinationDetails.Card": frozenset(
        {"reference", "reference_status", "reference_type"}
    ),
    "stripe._setup_intent.SetupIntent": frozenset(
        {
            "allowed_payment_method_types",
            "attach_to_self",
            "customer_account",
            "flow_directions",
            "managed_payments",
        }
    ),
    "stripe._setup_intent.SetupIntent.AutomaticPaymentMethods": frozenset({"allow_redirects"}),
    "stripe._setup_intent.SetupIntent.NextAction": frozenset({"use_stripe_sdk"}),
    "stripe._setup_intent.SetupIntent.PaymentMethodOptions": ALL_FIELDS,  # the enabled payment method types
    "stripe._subscription.Subscription": frozenset({"default_tax_rates", "presentment_details"}),
    "stripe._subscription.Subscription.AutomaticTax.Liability": frozenset({"account"}),
    "stripe._subscription.Subscription.BillingMode": frozenset({"updated_at"}),
    "stripe._subscription.Subscription.BillingMode.Flexible": frozenset({"proration_discounts"}),
    "stripe._subscription.Subscription.InvoiceSettings.Issuer": frozenset({"account"}),
    "stripe._subscription_item.SubscriptionItem": frozenset({"billed_until", "quantity"}),
    "stripe._subscription_schedule.SubscriptionSchedule.BillingMode": frozenset({"updated_at"}),
    "stripe._subscription_schedule.SubscriptionSchedule.BillingMode.Flexible": frozenset(
        {"proration_discounts"}
    ),
    "stripe._subscription_schedule.SubscriptionSchedule.DefaultSettings": frozenset(
        {"automatic_tax"}
    ),
    "stripe._subscription_schedule.SubscriptionSchedule.DefaultSettings.AutomaticTax.Liability": frozenset(
        {"account"}
    ),
    "stripe._subscription_schedule.SubscriptionSchedule.DefaultSettings.InvoiceSettings.Issuer": frozenset(
        {"account"}
    ),
    "stripe._subscription_schedule.SubscriptionSchedule.Phase": frozenset(
        {"automatic_tax", "default_tax_rates", "trial"}
    ),
    "stripe._subscription_schedule.SubscriptionSchedule.Phase.AddInvoiceItem": frozenset(
        {"tax_rates"}
    ),
    "stripe._subscription_schedule.SubscriptionSchedule.Phase.AddInvoiceItem.Period.End": frozenset(
        {"timestamp"}
    ),
    "stripe._subscription_schedule.SubscriptionSchedule.Phase.AddInvoiceItem.Period.Start": frozenset(
        {"timestamp"}
    ),
    "stripe._subscription_schedule.SubscriptionSchedule.Phase.AutomaticTax.Liability": frozenset(
        {"account"}
    ),
    "stripe._subscription_schedule.SubscriptionSchedule.Phase.InvoiceSettings.Issuer": frozenset(
        {"account"}
    ),
    "stripe._subscription_schedule.SubscriptionSchedule.Phase.Item": frozenset(
        {"quantity", "tax_rates"}
    ),
    "stripe.billing_portal._session.Session.Flow.SubscriptionUpdateConfirm.Item": frozenset(
        {"quantity"}
    ),
    "stripe.checkout._session.Session": frozenset(
        {
            "branding_settings",
            "excluded_payment_method_types",
            "name_collection",
            "optional_items",
            "phone_number_collection",
            "presentment_details",
            "redirect_on_completion",
            "return_url",
            "tax_id_collection",
        }
    ),
    "stripe.checkout._session.Session.AutomaticTax.Liability": frozenset({"account"}),
    "stripe.checkout._session.Session.BrandingSettings.Icon": frozenset({"file", "url"}),
    "stripe.checkout._session.Session.BrandingSettings.Logo": frozenset({"file", "url"}),
    "stripe.checkout._session.Session.InvoiceCreation.InvoiceData.Issuer": frozenset({"account"}),
    "stripe.checkout._session.Session.NameCollection": frozenset({"business", "individual"}),
    "stripe.checkout._session.Session.PaymentMethodOptions": ALL_FIELDS,  # the enabled payment method types
    "stripe.checkout._session.Session.ShippingCost": frozenset({"taxes"}),
    "stripe.checkout._session.Session.TotalDetails": frozenset({"breakdown"}),
    "stripe.checkout._session.Session.WalletOptions": frozenset({"link"}),
    "stripe.checkout._session.Session.WalletOptions.Link": frozenset({"display"}),
}


def class_key(cls: type) -> str:
    """The key of an SDK class in `NOT_ALWAYS_RETURNED`."""
    return f"{cls.__module__}.{cls.__qualname__}"


def may_be_absent(cls: type, field_name: str) -> bool:
    fields = NOT_ALWAYS_RETURNED.get(class_key(cls))
    return fields is not None and (fields == ALL_FIELDS or field_name in fields)
