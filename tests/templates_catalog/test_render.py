"""templates_catalog.render: Meta's documented send shapes, the text views, every RenderError, languages.

The expected Cloud API objects are written out from Meta's send examples
(developers.facebook.com/docs/whatsapp/...: send-message-templates, authentication-templates,
coupon-templates, limited-time-offer-templates, mpm-templates, spm-templates, catalog-templates,
media- and product-card-carousel-templates). Where Meta's examples write a button ``index`` as a
number, the gateway sends the string form protocols.md B1 documents (Meta accepts both).
"""
from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from templates_catalog.render import (
    Issue, RenderError, Rendered, compile_template, pick_language, render,
)

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "whatsapp_templates"
if not FIXTURES.is_dir():
    pytest.skip(f"shared fixtures not found at {FIXTURES}", allow_module_level=True)


def _fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"pywa_template_create__{name}.json").read_text())


def _all_fixtures() -> dict[str, dict]:
    return {p.stem.split("__", 1)[1]: json.loads(p.read_text()) for p in sorted(FIXTURES.glob("*.json"))}


LANG = {"code": "en_US", "policy": "deterministic"}
IMAGE_LINK = "https://cdn.example.com/header.jpg"
LOCATION = {"latitude": "37.483307", "longitude": "-122.148981", "name": "Pablo Morales",
            "address": "1 Hacker Way, Menlo Park, CA 94025"}
PRODUCT = {"product_retailer_id": "nqryix03ez", "catalog_id": "194836987003835"}
SECTIONS = [{"title": "Popular Bundles", "product_items": ["2lc20305pt", "nseiw1x3ch"]},
            {"title": "Premium Packages", "product_items": [{"product_retailer_id": "n6k6x0y7oe"}]}]
EXPIRES_MS = 1698562800000


# -- values built from a definition's own examples ------------------------------------------------------

def _url_suffix(url: str, example: str) -> str:
    prefix = url.split("{{", 1)[0]
    if example.startswith(prefix):
        return example[len(prefix):]
    return re.split(r"[/=?&]", example)[-1]                # an example written as a different full URL


def _text_example(comp: dict, key: str):
    example = comp.get("example") or {}
    if f"{key}_named_params" in example:
        return {p["param_name"]: p["example"] for p in example[f"{key}_named_params"]}
    values = example.get(key)
    if isinstance(values, str):
        return [values]
    if values and isinstance(values[0], list):
        return values[0]
    return values


def _buttons_example(buttons: list) -> list:
    out = []
    for index, button in enumerate(buttons):
        kind = button["type"].upper()
        if kind == "URL" and "{{" in button.get("url", ""):
            out.append({"index": index, "sub_type": "url",
                        "parameters": [_url_suffix(button["url"], button["example"][0])]})
        elif kind == "COPY_CODE":
            out.append({"index": index, "sub_type": "copy_code", "parameters": [button["example"]]})
        elif kind == "QUICK_REPLY":
            out.append({"index": index, "sub_type": "quick_reply", "parameters": [f"reply-{index}"]})
        elif kind == "MPM":
            out.append({"index": index, "sub_type": "mpm", "parameters": [
                {"thumbnail_product_retailer_id": "2lc20305pt", "sections": SECTIONS}]})
        elif kind == "CATALOG":
            out.append({"index": index, "parameters": ["2lc20305pt"]})
    return out


def _block_example(components: list, category: str) -> dict:
    out: dict = {}
    for comp in components:
        kind = comp["type"].upper()
        if kind == "HEADER":
            fmt = comp.get("format", "TEXT").upper()
            if fmt == "TEXT" and "{{" in comp.get("text", ""):
                out["header"] = _text_example(comp, "header_text")
            elif fmt in ("IMAGE", "VIDEO", "DOCUMENT"):
                out["header"] = {"type": fmt.lower(), fmt.lower(): {"link": IMAGE_LINK}}
            elif fmt == "LOCATION":
                out["header"] = {"type": "location", "location": LOCATION}
            elif fmt == "PRODUCT":
                out["header"] = {"type": "product", "product": PRODUCT}
        elif kind == "BODY":
            if "text" not in comp and category == "AUTHENTICATION":
                out["body"] = ["123456"]
            elif "{{" in comp.get("text", ""):
                out["body"] = _text_example(comp, "body_text")
        elif kind == "BUTTONS":
            out["buttons"] = _buttons_example(comp["buttons"])
        elif kind == "LIMITED_TIME_OFFER":
            out["limited_time_offer"] = {"expiration_time_ms": EXPIRES_MS}
        elif kind == "CAROUSEL":
            out["cards"] = [_block_example(card["components"], category) for card in comp["cards"]]
    return out


def example_parameters(definition: dict) -> dict:
    return _block_example(definition["components"], definition.get("category", ""))


@pytest.mark.parametrize("name", sorted(_all_fixtures()))
def test_every_fixture_renders_from_its_own_examples(name):
    definition = _all_fixtures()[name]
    before = copy.deepcopy(definition)
    out = render(definition, example_parameters(definition))
    assert isinstance(out, Rendered)
    assert out.cloud_api["name"] == definition["name"]
    assert out.cloud_api["language"] == LANG
    json.dumps(out.cloud_api)                                # what the send path serialises
    for view in (out.text, out.sms_text):
        assert view.strip() and "{{" not in view and "}}" not in view
    assert definition == before                               # the definition is never modified


# -- the Cloud API object, against Meta's documented shapes -------------------------------------------

def test_positional_body_quick_reply_payload_and_copy_code():
    out = render(_fixture("coupon_code_fall2023_25off"),
                 {"body": ["25OFF", "25%"], "buttons": {0: "UNSUBSCRIBE", 1: "25OFF"}})
    assert out.cloud_api == {"name": "coupon_code_fall2023_25off", "language": LANG, "components": [
        {"type": "body", "parameters": [{"type": "text", "text": "25OFF"}, {"type": "text", "text": "25%"}]},
        {"type": "button", "sub_type": "quick_reply", "index": "0",
         "parameters": [{"type": "payload", "payload": "UNSUBSCRIBE"}]},
        {"type": "button", "sub_type": "copy_code", "index": "1",
         "parameters": [{"type": "coupon_code", "coupon_code": "25OFF"}]},
    ]}


NAMED = {
    "name": "order_ready", "language": "es_MX", "category": "UTILITY", "parameter_format": "NAMED",
    "components": [
        {"type": "HEADER", "format": "TEXT", "text": "Hola {{first_name}}",
         "example": {"header_text_named_params": [{"param_name": "first_name", "example": "Ana"}]}},
        {"type": "BODY", "text": "{{first_name}}, tu pedido {{order_id}} está listo. Total: {{total}}.",
         "example": {"body_text_named_params": [{"param_name": "first_name", "example": "Ana"},
                                                {"param_name": "order_id", "example": "A-1001"},
                                                {"param_name": "total", "example": "$10"}]}},
        {"type": "FOOTER", "text": "Tienda Centro"},
        {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Sí"}, {"type": "QUICK_REPLY", "text": "No"}]},
    ],
}


def test_named_header_and_body_carry_parameter_name():
    total = {"type": "currency", "currency": {"fallback_value": "$1,299.00", "code": "MXN", "amount_1000": 1299000}}
    out = render(NAMED, {"header": "Ana", "body": {"order_id": "A-1001", "first_name": "Ana", "total": total}})
    assert out.cloud_api == {"name": "order_ready", "language": {"code": "es_MX", "policy": "deterministic"},
                             "components": [
        {"type": "header", "parameters": [{"type": "text", "parameter_name": "first_name", "text": "Ana"}]},
        {"type": "body", "parameters": [   # in the order the template names them, whatever the mapping's order
            {"type": "text", "parameter_name": "first_name", "text": "Ana"},
            {"type": "text", "parameter_name": "order_id", "text": "A-1001"},
            {"type": "currency", "parameter_name": "total", "currency": total["currency"]}]},
    ]}
    assert out.text == "Hola Ana\n\nAna, tu pedido A-1001 está listo. Total: $1,299.00.\n\nTienda Centro\n\n[Sí]\n[No]"


def test_a_plain_mapping_is_the_body_alone():
    body = {"first_name": "Ana", "order_id": "A-1001", "total": "$10"}
    headless = {**NAMED, "components": NAMED["components"][1:]}
    assert render(headless, body).cloud_api["components"] == [{"type": "body", "parameters": [
        {"type": "text", "parameter_name": k, "text": v} for k, v in body.items()]}]
    # The header's {{first_name}} is a parameter of its own: a body mapping does not fill it.
    assert _problems(NAMED, body) == ["header {{first_name}}"]
    as_mapping = render(NAMED, {"header": {"first_name": "Ana"}, "body": body})
    assert as_mapping == render(NAMED, {"header": "Ana", "body": body})


def test_text_header_with_a_parameter():
    out = render(_fixture("seasonal_promotion"),
                 {"header": ["Summer Sale"], "body": ["the end of August", "25OFF", "25%"]})
    assert out.cloud_api["components"] == [
        {"type": "header", "parameters": [{"type": "text", "text": "Summer Sale"}]},
        {"type": "body", "parameters": [{"type": "text", "text": "the end of August"},
                                        {"type": "text", "text": "25OFF"}, {"type": "text", "text": "25%"}]},
    ]


def test_image_header_limited_time_offer_copy_code_and_url_suffix():
    # Meta's limited-time-offer send example, value for value.
    out = render(_fixture("limited_time_offer_caribbean_pkg_2023"), {
        "header": {"type": "image", "image": {"id": "1602186516975000"}},
        "body": ["Pablo", "CARIBE25"],
        "limited_time_offer": {"expiration_time_ms": 1209600000},
        "buttons": [{"index": 0, "sub_type": "copy_code", "parameters": ["CARIBE25"]},
                    {"index": 1, "sub_type": "url", "parameters": ["n3mtql"]}],
    })
    assert out.cloud_api == {"name": "limited_time_offer_caribbean_pkg_2023", "language": LANG, "components": [
        {"type": "header", "parameters": [{"type": "image", "image": {"id": "1602186516975000"}}]},
        {"type": "body", "parameters": [{"type": "text", "text": "Pablo"}, {"type": "text", "text": "CARIBE25"}]},
        {"type": "limited_time_offer", "parameters": [
            {"type": "limited_time_offer", "limited_time_offer": {"expiration_time_ms": 1209600000}}]},
        {"type": "button", "sub_type": "copy_code", "index": "0",
         "parameters": [{"type": "coupon_code", "coupon_code": "CARIBE25"}]},
        {"type": "button", "sub_type": "url", "index": "1", "parameters": [{"type": "text", "text": "n3mtql"}]},
    ]}
    assert "[Book now!] https://awesomedestinations.com/offers?code=n3mtql" in out.text
    assert "Expiring offer! (until 1970-01-15 00:00 UTC)" in out.text


def test_image_header_by_link_in_every_spelling():
    definition = _fixture("limited_time_offer_caribbean_pkg_2023")
    rest = {"body": ["Pablo", "CARIBE25"], "limited_time_offer": EXPIRES_MS, "buttons": {0: "CARIBE25", 1: "n3mtql"}}
    expected = {"type": "header", "parameters": [{"type": "image", "image": {"link": IMAGE_LINK}}]}
    for header in ({"type": "image", "image": {"link": IMAGE_LINK}}, {"link": IMAGE_LINK}, IMAGE_LINK):
        out = render(definition, {"header": header, **rest})
        assert out.cloud_api["components"][0] == expected
        assert out.sms_text.startswith(IMAGE_LINK + "\n\nExpiring offer! (until 2023-10-29 07:00 UTC)\n\nGood news")
        assert out.text.startswith("[image]\n\nExpiring offer!")


def test_document_header_with_filename_and_static_buttons():
    out = render(_fixture("order_confirmation"), {
        "header": {"type": "document", "document": {"link": "https://example.com/r/860198.pdf",
                                                    "filename": "receipt.pdf"}},
        "body": ["Pablo", "860198-230332"],
    })
    assert out.cloud_api["components"] == [
        {"type": "header", "parameters": [{"type": "document", "document": {
            "link": "https://example.com/r/860198.pdf", "filename": "receipt.pdf"}}]},
        {"type": "body", "parameters": [{"type": "text", "text": "Pablo"}, {"type": "text", "text": "860198-230332"}]},
    ]                                                       # a phone and a fixed URL button send nothing
    assert out.sms_text.endswith("Call: +15550051310\nContact Support: https://www.luckyshrub.com/support")


def test_location_header():
    out = render(_fixture("order_delivery_update"), {"header": LOCATION, "body": ["Mark", "566701"]})
    assert out.cloud_api["components"][0] == {"type": "header",
                                              "parameters": [{"type": "location", "location": LOCATION}]}
    assert out.text.startswith("[location: Pablo Morales, 1 Hacker Way, Menlo Park, CA 94025]\n\nGood news Mark!")
    assert out.sms_text.startswith("Pablo Morales, 1 Hacker Way, Menlo Park, CA 94025: "
                                   "https://maps.google.com/?q=37.483307,-122.148981\n\n")


def test_currency_and_date_time():
    definition = {"name": "payment_due", "language": "en_US", "category": "UTILITY", "components": [
        {"type": "BODY", "text": "Your payment of {{1}} is due on {{2}}."}]}
    money = {"type": "currency", "currency": {"fallback_value": "$100.99", "code": "USD", "amount_1000": 100990}}
    day = {"type": "date_time", "date_time": {"fallback_value": "February 25, 1977"}}
    out = render(definition, [money, day])
    assert out.cloud_api["components"] == [{"type": "body", "parameters": [money, day]}]
    assert out.text == out.sms_text == "Your payment of $100.99 is due on February 25, 1977."


def test_authentication_copy_code_sends_the_code_twice():
    # authentication-templates: body {{1}} and a url button, both with the code.
    for name in ("authentication_code_copy_code_button", "authentication_code_autofill_button",
                 "zero_tap_auth_template"):
        out = render(_fixture(name), ["J$FpnYnP"])
        assert out.cloud_api["components"] == [
            {"type": "body", "parameters": [{"type": "text", "text": "J$FpnYnP"}]},
            {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "J$FpnYnP"}]},
        ]
    out = render(_fixture("authentication_code_copy_code_button"),
                 {"body": ["J$FpnYnP"], "buttons": [{"index": 0, "sub_type": "url", "parameters": ["J$FpnYnP"]}]})
    assert out.cloud_api["components"][1]["parameters"] == [{"type": "text", "text": "J$FpnYnP"}]
    assert out.text == ("J$FpnYnP is your verification code. For your security, do not share this code."
                        "\n\nThis code expires in 5 minutes.\n\n[Copy Code]")
    assert out.sms_text == ("J$FpnYnP is your verification code. For your security, do not share this code."
                            "\n\nThis code expires in 5 minutes.")


def test_multi_product_button():
    out = render(_fixture("abandoned_cart"), {"header": "Pablo", "body": ["10OFF"], "buttons": [
        {"index": 0, "sub_type": "mpm", "parameters": [
            {"type": "action", "action": {"thumbnail_product_retailer_id": "2lc20305pt", "sections": SECTIONS}}]}]})
    assert out.cloud_api["components"][2] == {"type": "button", "sub_type": "mpm", "index": "0", "parameters": [
        {"type": "action", "action": {"thumbnail_product_retailer_id": "2lc20305pt", "sections": [
            {"title": "Popular Bundles", "product_items": [{"product_retailer_id": "2lc20305pt"},
                                                           {"product_retailer_id": "nseiw1x3ch"}]},
            {"title": "Premium Packages", "product_items": [{"product_retailer_id": "n6k6x0y7oe"}]}]}}]}


def test_catalog_thumbnail_is_optional():
    definition = _fixture("intro_catalog_offer")
    out = render(definition, {"body": ["100", "400", "3"], "buttons": {0: "2lc20305pt"}})
    assert out.cloud_api["components"][1] == {"type": "button", "sub_type": "catalog", "index": "0", "parameters": [
        {"type": "action", "action": {"thumbnail_product_retailer_id": "2lc20305pt"}}]}
    assert [c["type"] for c in render(definition, ["100", "400", "3"]).cloud_api["components"]] == ["body"]


def test_single_product_header():
    out = render(_fixture("abandoned_cart_offer"), {"header": PRODUCT, "body": ["25OFF", "25%"]})
    assert out.cloud_api["components"] == [
        {"type": "header", "parameters": [{"type": "product", "product": PRODUCT}]},
        {"type": "body", "parameters": [{"type": "text", "text": "25OFF"}, {"type": "text", "text": "25%"}]},
    ]                                                       # the View (spm) button sends nothing


def test_media_card_carousel():
    cards = [{"header": {"type": "image", "image": {"id": media}}, "buttons": {0: payload, 1: suffix}}
             for media, payload, suffix in (("1558081531584829", "more-aloes", "blue-elf"),
                                            ("861236878885705", "more-crassulas", "buddhas-temple"),
                                            ("1587064918516321", "more-echeverias", "black-prince"))]
    out = render(_fixture("carousel_template_media_cards_v1"), {"body": ["Pablo", "20%", "20OFF"], "cards": cards})
    body, carousel = out.cloud_api["components"]
    assert body == {"type": "body", "parameters": [{"type": "text", "text": v} for v in ("Pablo", "20%", "20OFF")]}
    assert carousel["type"] == "carousel"
    assert carousel["cards"][0] == {"card_index": 0, "components": [
        {"type": "header", "parameters": [{"type": "image", "image": {"id": "1558081531584829"}}]},
        {"type": "button", "sub_type": "quick_reply", "index": "0",
         "parameters": [{"type": "payload", "payload": "more-aloes"}]},
        {"type": "button", "sub_type": "url", "index": "1", "parameters": [{"type": "text", "text": "blue-elf"}]}]}
    assert [c["card_index"] for c in carousel["cards"]] == [0, 1, 2]
    assert "[Shop] https://www.luckyshrub.com/rare-succulents/black-prince" in out.text


def test_product_card_carousel_takes_up_to_ten_cards():
    skus = ["vrpj01fvwp", "va2l5ioeat", "sqpjv0mgde"]
    out = render(_fixture("carousel_template_product_cards_v1"), {
        "body": ["Pablo"],
        "cards": [{"header": {"product_retailer_id": sku, "catalog_id": "194836987003835"}} for sku in skus]})
    assert out.cloud_api["components"][1] == {"type": "carousel", "cards": [
        {"card_index": i, "components": [{"type": "header", "parameters": [
            {"type": "product", "product": {"product_retailer_id": sku, "catalog_id": "194836987003835"}}]}]}
        for i, sku in enumerate(skus)]}
    assert not out.sms_text.endswith("\n")


def test_flow_button_action_is_optional():
    definition = {"name": "book", "language": "en_US", "category": "UTILITY", "components": [
        {"type": "BODY", "text": "Book your visit"},
        {"type": "BUTTONS", "buttons": [{"type": "FLOW", "text": "Book", "flow_id": "1234"}]}]}
    assert render(definition).cloud_api["components"] == []
    out = render(definition, {"buttons": {0: {"type": "action", "action": {
        "flow_token": "T-1", "flow_action_data": {"clinic": "centro"}}}}})
    assert out.cloud_api["components"] == [{"type": "button", "sub_type": "flow", "index": "0", "parameters": [
        {"type": "action", "action": {"flow_token": "T-1", "flow_action_data": {"clinic": "centro"}}}]}]
    assert out.text == "Book your visit\n\n[Book]" and out.sms_text == "Book your visit"


def test_language_override_and_input_spellings_agree():
    definition = _fixture("order_delivery_update")
    base = render(definition, {"header": LOCATION, "body": ["Mark", "566701"], "buttons": {0: "STOP"}})
    for params in ({"header": {"type": "location", "location": LOCATION}, "body": {"1": "Mark", 2: "566701"},
                    "buttons": [{"index": "0", "sub_type": "QUICK_REPLY", "parameters": [{"type": "payload",
                                                                                         "payload": "STOP"}]}]},
                   {"header": LOCATION, "body": [{"type": "text", "text": "Mark"}, 566701],
                    "buttons": {"0": "STOP"}}):
        assert render(definition, params) == base
    assert render(definition, {"header": LOCATION, "body": ["Mark", "566701"]},
                  language="es").cloud_api["language"] == {"code": "es", "policy": "deterministic"}


# -- text and sms_text ---------------------------------------------------------------------------------

def test_text_and_sms_text_for_header_body_footer_and_buttons():
    out = render(_fixture("seasonal_promotion"),
                 {"header": "Summer Sale", "body": ["the end of August", "25OFF", "25%"]})
    assert out.text == ("Our Summer Sale is on!\n\n"
                        "Shop now through the end of August and use code 25OFF to get 25% off of all merchandise.\n\n"
                        "Use the buttons below to manage your MARKETING subscriptions\n\n"
                        "[Unsubscribe from Promos]\n[Unsubscribe from All]")
    assert out.sms_text == ("Our Summer Sale is on!\n\n"
                            "Shop now through the end of August and use code 25OFF to get 25% off of all "
                            "merchandise.\n\n"
                            "Use the buttons below to manage your MARKETING subscriptions\n\n"
                            "1. Unsubscribe from Promos\n2. Unsubscribe from All")


def test_sms_text_lists_url_buttons_with_their_full_url():
    definition = {"name": "pedido", "language": "es", "category": "UTILITY", "components": [
        {"type": "HEADER", "format": "TEXT", "text": "Pedido {{1}}"},
        {"type": "BODY", "text": "Hola {{1}}, ¿confirmas la entrega de {{2}}? Usa {{3}} para 10% {de} descuento."},
        {"type": "FOOTER", "text": "Tienda {Centro}"},
        {"type": "BUTTONS", "buttons": [
            {"type": "QUICK_REPLY", "text": "Sí"}, {"type": "QUICK_REPLY", "text": "No"},
            {"type": "URL", "text": "Ver pedido", "url": "https://shop.example.com/o/{{1}}"},
            {"type": "COPY_CODE", "example": "DESC10"}]}]}
    out = render(definition, {"header": "A-7", "body": ["Ana", "A-7", "DESC10"],
                              "buttons": {2: "A-7?utm=wa", 3: "DESC10"}})
    assert out.text == ("Pedido A-7\n\nHola Ana, ¿confirmas la entrega de A-7? Usa DESC10 para 10% {de} descuento."
                        "\n\nTienda {Centro}\n\n[Sí]\n[No]\n[Ver pedido] https://shop.example.com/o/A-7?utm=wa"
                        "\n[Copy offer code] DESC10")
    assert out.sms_text == ("Pedido A-7\n\nHola Ana, ¿confirmas la entrega de A-7? Usa DESC10 para 10% {de} descuento."
                            "\n\nTienda {Centro}\n\n1. Sí\n2. No\nVer pedido: https://shop.example.com/o/A-7?utm=wa"
                            "\nCopy offer code: DESC10")


# -- RenderError: every problem at once, each naming its parameter -------------------------------------

def _problems(definition, parameters, **kw) -> list[str]:
    with pytest.raises(RenderError) as caught:
        render(definition, parameters, **kw)
    assert isinstance(caught.value, ValueError)
    assert all(isinstance(i, Issue) and i.problem and i.fix for i in caught.value.issues)
    return [i.parameter for i in caught.value.issues]


SEASONAL = _fixture("seasonal_promotion")
LTO = _fixture("limited_time_offer_caribbean_pkg_2023")
COUPON = _fixture("coupon_code_fall2023_25off")
AUTH = _fixture("authentication_code_copy_code_button")
MEDIA_CARDS = _fixture("carousel_template_media_cards_v1")
LTO_OK = {"header": IMAGE_LINK, "body": ["Pablo", "CARIBE25"], "limited_time_offer": EXPIRES_MS,
          "buttons": {0: "CARIBE25", 1: "n3mtql"}}
BODY_ONLY = {"name": "long", "language": "en", "components": [{"type": "BODY", "text": "Hi {{1}}"}]}
WITH_FOOTER = {"name": "long", "language": "en", "components": [{"type": "BODY", "text": "Hi {{1}}"},
                                                               {"type": "FOOTER", "text": "Bye"}]}

ERROR_CASES = [
    ("missing positional", SEASONAL, {"header": "Sale", "body": ["August", "25OFF"]}, ["body {{3}}"]),
    ("extra positional", SEASONAL, {"header": "Sale", "body": ["a", "b", "c", "d"]}, ["body {{4}}"]),
    ("missing named", NAMED, {"header": "Ana", "body": {"first_name": "Ana", "total": "$1"}}, ["body {{order_id}}"]),
    ("extra named", NAMED, {"header": "Ana", "body": {"first_name": "A", "order_id": "1", "total": "$1",
                                                     "coupon": "X"}}, ["body {{coupon}}"]),
    ("a list for a named body", NAMED, {"header": "Ana", "body": ["Ana", "1", "$1"]}, ["body"]),
    ("header text over 60", SEASONAL, {"header": "x" * 60, "body": ["a", "b", "c"]}, ["header {{1}}"]),
    ("body over 1024 with a footer", WITH_FOOTER, ["x" * 1022], ["body {{1}}"]),
    ("body over 32768 alone", BODY_ONLY, ["x" * 32766], ["body {{1}}"]),
    ("line break", SEASONAL, {"header": "Sale", "body": ["a\nb", "b", "c"]}, ["body {{1}}"]),
    ("tab", SEASONAL, {"header": "Sale", "body": ["a", "b\tc", "c"]}, ["body {{2}}"]),
    ("five spaces", SEASONAL, {"header": "Sale", "body": ["a", "b     c", "c"]}, ["body {{2}}"]),
    ("empty", SEASONAL, {"header": "Sale", "body": ["", "b", "c"]}, ["body {{1}}"]),
    ("blank", SEASONAL, {"header": "Sale", "body": ["a", "   ", "c"]}, ["body {{2}}"]),
    ("None", SEASONAL, {"header": "Sale", "body": [None, "b", "c"]}, ["body {{1}}"]),
    ("a bool", SEASONAL, {"header": "Sale", "body": [True, "b", "c"]}, ["body {{1}}"]),
    ("an image in the body", SEASONAL, {"header": "Sale", "body": [{"type": "image", "image": {"link": IMAGE_LINK}},
                                                                  "b", "c"]}, ["body {{1}}"]),
    ("currency without a code", SEASONAL, {"header": "Sale", "body": [
        "a", {"type": "currency", "currency": {"fallback_value": "$1", "amount_1000": 1000}}, "c"]}, ["body {{2}}"]),
    ("date_time without fallback", SEASONAL, {"header": "Sale", "body": [
        "a", "b", {"type": "date_time", "date_time": {}}]}, ["body {{3}}"]),
    ("unknown type", SEASONAL, {"header": "Sale", "body": ["a", "b", {"type": "money"}]}, ["body {{3}}"]),
    ("image header missing", LTO, {**LTO_OK, "header": None}, ["header"]),
    ("image header without link or id", LTO, {**LTO_OK, "header": {"type": "image", "image": {}}}, ["header"]),
    ("image header given a video", LTO, {**LTO_OK, "header": {"type": "video", "video": {"link": IMAGE_LINK}}},
     ["header"]),
    ("image header with a caption", LTO, {**LTO_OK, "header": {"link": IMAGE_LINK, "caption": "hi"}}, ["header"]),
    ("image header given text", LTO, {**LTO_OK, "header": "Summer"}, ["header"]),
    ("location without latitude", _fixture("order_delivery_update"),
     {"header": {k: v for k, v in LOCATION.items() if k != "latitude"}, "body": ["Mark", "1"]}, ["header"]),
    ("static header given a value", COUPON, {"header": "Fall", "body": ["25OFF", "25%"], "buttons": {1: "25OFF"}},
     ["header"]),
    ("url suffix missing", LTO, {**LTO_OK, "buttons": {0: "CARIBE25"}}, ["button 1 url suffix"]),
    ("url suffix a whole url", LTO, {**LTO_OK, "buttons": {0: "CARIBE25",
                                                           1: "https://awesomedestinations.com/offers?ref=n3mtql"}},
     ["button 1 url suffix"]),
    ("url suffix with a space", LTO, {**LTO_OK, "buttons": {0: "CARIBE25", 1: "a b"}}, ["button 1 url suffix"]),
    ("url over 2000", LTO, {**LTO_OK, "buttons": {0: "CARIBE25", 1: "x" * 2000}}, ["button 1 url suffix"]),
    ("coupon missing", COUPON, {"body": ["25OFF", "25%"]}, ["button 1 coupon code"]),
    ("coupon over 15", COUPON, {"body": ["25OFF", "25%"], "buttons": {1: "A" * 16}}, ["button 1 coupon code"]),
    ("coupon not alphanumeric", COUPON, {"body": ["25OFF", "25%"], "buttons": {1: "25-OFF"}}, ["button 1 coupon code"]),
    ("quick reply payload empty", COUPON, {"body": ["25OFF", "25%"], "buttons": {0: "", 1: "25OFF"}},
     ["button 0 quick reply payload"]),
    ("button not in the template", COUPON, {"body": ["25OFF", "25%"], "buttons": {1: "25OFF", 5: "x"}}, ["button 5"]),
    ("button sub_type mismatch", COUPON, {"body": ["25OFF", "25%"], "buttons": [
        {"index": 0, "sub_type": "url", "parameters": ["x"]}, {"index": 1, "parameters": ["25OFF"]}]}, ["button 0"]),
    ("button given twice", COUPON, {"body": ["25OFF", "25%"], "buttons": [
        {"index": 1, "parameters": ["25OFF"]}, {"index": 1, "parameters": ["25OFF"]}]}, ["button 1"]),
    ("button without index", COUPON, {"body": ["25OFF", "25%"], "buttons": [
        {"index": 1, "parameters": ["25OFF"]}, {"parameters": ["x"]}]}, ["buttons[1]"]),
    ("one-time code differs", AUTH, {"body": ["123456"], "buttons": {0: "654321"}}, ["button 0 one-time code"]),
    ("one-time code over 15", AUTH, ["1234567890123456"], ["body {{1}}"]),
    ("one-time code over 15 given twice", AUTH, {"body": ["1234567890123456"], "buttons": {0: "1234567890123456"}},
     ["button 0 one-time code"]),
    ("one-time code missing", AUTH, [], ["body {{1}}"]),
    ("offer expiration missing", LTO, {k: v for k, v in LTO_OK.items() if k != "limited_time_offer"},
     ["limited_time_offer expiration"]),
    ("cards missing", MEDIA_CARDS, {"body": ["a", "b", "c"]}, ["cards"]),
    ("too few media cards", MEDIA_CARDS, {"body": ["a", "b", "c"], "cards": [
        {"header": IMAGE_LINK, "buttons": {1: "x"}}]}, ["cards"]),
    ("card url suffix missing", MEDIA_CARDS, {"body": ["a", "b", "c"], "cards": [
        {"header": IMAGE_LINK, "buttons": {1: "x"}}, {"header": IMAGE_LINK},
        {"header": IMAGE_LINK, "buttons": {1: "z"}}]},
     ["card 1 button 1 url suffix"]),
    ("products missing", _fixture("abandoned_cart"), {"header": "Pablo", "body": ["10OFF"]}, ["button 0 products"]),
    ("products over 30", _fixture("abandoned_cart"), {"header": "Pablo", "body": ["10OFF"], "buttons": {0: {
        "thumbnail_product_retailer_id": "a", "sections": [{"title": "All", "product_items": ["x"] * 31}]}}},
     ["button 0 products"]),
    ("several sections without titles", _fixture("abandoned_cart"), {"header": "Pablo", "body": ["10OFF"],
                                                                     "buttons": {0: {
        "thumbnail_product_retailer_id": "a", "sections": [{"product_items": ["x"]}, {"product_items": ["y"]}]}}},
     ["button 0 products section 0"]),
    ("catalog thumbnail not an action", _fixture("intro_catalog_offer"),
     {"body": ["100", "400", "3"], "buttons": {0: {"sections": []}}}, ["button 0 catalog thumbnail"]),
    ("language missing", {**BODY_ONLY, "language": None}, ["Ana"], ["language"]),
    ("not a list or mapping", SEASONAL, "Ana", ["parameters"]),
]


@pytest.mark.parametrize("definition, parameters, names", [c[1:] for c in ERROR_CASES],
                         ids=[c[0] for c in ERROR_CASES])
def test_render_error_names_the_parameter(definition, parameters, names):
    assert _problems(definition, parameters) == names


def test_all_problems_are_reported_at_once():
    names = _problems(LTO, {"header": {"type": "image", "image": {}}, "body": ["Pablo\n", "CARIBE25", "extra"],
                            "buttons": {0: "CARIBE-25-TOO-LONG", 7: "x"}})
    assert names == ["header", "body {{1}}", "body {{3}}", "button 0 coupon code", "button 1 url suffix",
                     "button 7", "limited_time_offer expiration"]


def test_issues_never_quote_the_values():
    secret = "Ana Secreta\n+34 600 000 000"
    with pytest.raises(RenderError) as caught:
        render(SEASONAL, {"header": secret, "body": [secret, secret + " " * 5, {"type": "x", "text": secret}],
                          "buttons": {0: secret, 9: secret}})
    message = str(caught.value)
    assert "Secreta" not in message and "600" not in message
    assert all("Secreta" not in str(i.as_dict()) for i in caught.value.issues)


def test_template_problems_are_reported_too():
    with pytest.raises(RenderError) as caught:
        render({"name": "x", "language": "en", "components": [
            {"type": "HEADER", "format": "HOLOGRAM"}, {"type": "BODY", "text": "Hi {{1}} and {{3}}"}]}, ["a", "b"])
    assert [i.parameter for i in caught.value.issues] == ["header", "template body"]


# -- compiling once --------------------------------------------------------------------------------------

def test_a_definition_is_compiled_once_and_by_identity():
    definition = _fixture("seasonal_promotion")
    assert compile_template(definition) is compile_template(definition)
    assert compile_template(copy.deepcopy(definition)) is not compile_template(definition)
    compiled = compile_template(definition)
    values = {"header": "Sale", "body": ["a", "b", "c"]}
    assert compiled.render(values) == render(definition, values)


def test_values_are_not_shared_between_renders():
    definition = _fixture("seasonal_promotion")
    first = render(definition, {"header": "A", "body": ["a", "b", "c"]})
    first.cloud_api["components"][0]["parameters"][0]["text"] = "changed"
    second = render(definition, {"header": "A", "body": ["a", "b", "c"]})
    assert second.cloud_api["components"][0]["parameters"][0]["text"] == "A"


# -- language fallback ---------------------------------------------------------------------------------

LANGUAGES = ["en_US", "en_GB", "es", "es_ES", "es_AR", "pt_BR", "zh_CN"]


@pytest.mark.parametrize("available, wanted, default, picked", [
    (LANGUAGES, "es_AR", "en_US", "es_AR"),          # exactly the contact's language
    (LANGUAGES, "es_MX", "en_US", "es"),             # its base
    (["es_ES", "es_AR", "en_US"], "es_MX", "en_US", "es_AR"),   # a variant of the base, first in sorted order
    (["es_ES", "en_US"], "es", "en_US", "es_ES"),    # a bare base finds a variant
    (LANGUAGES, "es-mx", "en_US", "es"),             # BCP 47 spelling and case do not matter
    (LANGUAGES, "pt-br", None, "pt_BR"),
    (LANGUAGES, "fr_FR", "en_US", "en_US"),          # nothing for French: the account default
    (LANGUAGES, "fr_FR", "en", "en_GB"),             # the default goes through the same steps
    (LANGUAGES, None, "pt_BR", "pt_BR"),             # no contact language
    (LANGUAGES, "", "zh_CN", "zh_CN"),
    (LANGUAGES, "fr_FR", "de_DE", None),             # nothing fits
    (LANGUAGES, "fr_FR", None, None),
    ([], "es", "en_US", None),
    (["EN_us"], "en_US", None, "EN_us"),             # returned as Meta spells it
])
def test_pick_language(available, wanted, default, picked):
    assert pick_language(available, wanted, default) == picked
    assert pick_language(reversed(available), wanted, default) == picked      # order of the list does not matter
