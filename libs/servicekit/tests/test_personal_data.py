"""Personal data masked the same way by every service: phones to the last four digits,
e-mails to the first letter and domain, names and streets of people to a first letter; the city
and region stay; nested payloads masked at every depth, the input left as it was."""

from __future__ import annotations

from oms_servicekit.personal_data import mask_personal_fields, scrub

ORDER = {
    "order_id": "0b7c",
    "customer": {
        "platform_user_id": "u-1",
        "name": "Li Lei",
        "phone": "+8613800000001",
        "email": "li.lei@example.com",
    },
    "shipping_address": {
        "name": "Li Lei",
        "phone": "+8613800000001",
        "city": "Shanghai",
        "region": "CN-SH",
        "line1": "1 Demo Road",
        "postal_code": "200000",
    },
    "lines": [{"sku": "SKU-1", "name": "Yoghurt"}],
}


def test_every_personal_field_is_masked_at_any_depth_and_the_rest_kept() -> None:
    masked = mask_personal_fields(ORDER)
    assert masked["customer"] == {
        "platform_user_id": "u-1",
        "name": "L***",
        "phone": "+86*******0001",
        "email": "l***@example.com",
    }
    address = masked["shipping_address"]
    assert (address["city"], address["region"]) == ("Shanghai", "CN-SH")
    assert (address["line1"], address["postal_code"], address["name"]) == ("1***", "2***", "L***")
    assert masked["lines"] == [{"sku": "SKU-1", "name": "Yoghurt"}]  # a product's name
    assert "+8613800000001" not in str(masked) and "li.lei@example.com" not in str(masked)
    assert ORDER["customer"]["phone"] == "+8613800000001"  # the input is not changed


def test_free_text_keeps_two_characters_of_phones_and_e_mails() -> None:
    text = "call +86 138 0000 0001 or mail li.lei@example.com"
    scrubbed = scrub(text)
    assert scrubbed is not None
    assert "0000 0001" not in scrubbed and "li.lei@" not in scrubbed
    assert scrubbed.endswith("om")
