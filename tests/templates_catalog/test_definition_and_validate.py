"""Template definitions (Meta's creation shape) load from JSON and YAML, and validate() reports every
broken rule with its slug and JSON Pointer. The fixtures are Meta's own example bodies
(shared/fixtures/whatsapp_templates/); the table below covers each rule with a valid and an invalid
definition."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from templates_catalog.definition import (APPROVED, STATUSES, Template, TemplateLoadError, load_dir,
                                          load_file, placeholders, sendable)
from templates_catalog.validate import RULE_SLUGS, RULES, Issue, validate

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "whatsapp_templates"
if not FIXTURES.is_dir():
    pytest.skip(f"shared fixtures not found at {FIXTURES}", allow_module_level=True)
FIXTURE_FILES = sorted(FIXTURES.glob("*.json"))


def fixture(stem: str) -> dict:
    return json.loads((FIXTURES / f"pywa_template_create__{stem}.json").read_text())


def test_fixtures_are_there():
    assert len(FIXTURE_FILES) >= 13


# --- Every fixture loads (JSON and YAML) and is valid -------------------------------------------
@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: p.stem.split("__")[-1])
def test_fixture_loads_from_json_and_validates(path):
    [template] = load_file(path)
    assert template.to_meta() == json.loads(path.read_text())
    assert validate(template) == []
    assert validate(template.to_meta()) == []


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: p.stem.split("__")[-1])
def test_fixture_loads_from_yaml_and_validates(path, tmp_path):
    doc = json.loads(path.read_text())
    yaml_path = tmp_path / (path.stem + ".yaml")
    yaml_path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    [template] = load_file(yaml_path)
    assert template == Template.from_meta(doc)
    assert template.to_meta() == doc
    assert validate(template) == []


def test_load_dir_reads_json_and_yaml_and_ignores_other_files(tmp_path):
    for i, path in enumerate(FIXTURE_FILES):
        doc = json.loads(path.read_text())
        if i % 2:
            (tmp_path / (path.stem + ".yml")).write_text(yaml.safe_dump(doc))
        else:
            (tmp_path / path.name).write_text(json.dumps(doc))
    (tmp_path / "README.md").write_text("# not a template")
    templates = load_dir(tmp_path)
    assert [t.name for t in templates] == [t.name for t in load_dir(FIXTURES)]
    assert len(templates) == len(FIXTURE_FILES)
    assert all(validate(t) == [] for t in templates)


def test_a_file_may_hold_a_list_of_templates(tmp_path):
    docs = [fixture("seasonal_promotion"), fixture("order_confirmation")]
    path = tmp_path / "marketing.yaml"
    path.write_text(yaml.safe_dump(docs))
    assert [t.name for t in load_file(path)] == ["seasonal_promotion", "order_confirmation"]


# --- Loading errors name the file ---------------------------------------------------------------
@pytest.mark.parametrize("filename, content, problem", [
    ("bad.yaml", "name: [unclosed\nlanguage: en_US\n", "invalid YAML"),
    ("bad.json", '{"name": "x",}', "invalid JSON at line 1"),
    ("scalar.yaml", "just a string\n", "holds a string"),
    ("number.json", "42", "holds a number"),
    ("list.yaml", "- name: ok\n- 3\n", "item 1 of the list is a number"),
    ("empty.yml", "  \n", "is empty"),
    ("two.yaml", "name: a\n---\nname: b\n", "several YAML documents"),
    ("notes.txt", "name: x", "unknown file type '.txt'"),
    ("noext", "{}", "unknown file type '(no suffix)'"),
])
def test_load_errors_name_the_file(tmp_path, filename, content, problem):
    path = tmp_path / filename
    path.write_text(content)
    with pytest.raises(TemplateLoadError) as caught:
        load_file(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert problem in str(caught.value)
    assert caught.value.path == path


def test_load_error_for_a_missing_file_and_a_missing_directory(tmp_path):
    with pytest.raises(TemplateLoadError, match="no such file") as caught:
        load_file(tmp_path / "gone.json")
    assert str(tmp_path / "gone.json") in str(caught.value)
    with pytest.raises(TemplateLoadError, match="is not a directory"):
        load_dir(tmp_path / "nowhere")


def test_load_dir_refuses_the_same_name_and_language_twice_naming_both_files(tmp_path):
    doc = fixture("order_confirmation")
    (tmp_path / "a.json").write_text(json.dumps(doc))
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(TemplateLoadError) as caught:
        load_dir(tmp_path)
    assert str(caught.value).startswith(str(tmp_path / "b.yaml"))
    assert str(tmp_path / "a.json") in str(caught.value)
    (tmp_path / "b.yaml").write_text(yaml.safe_dump({**doc, "language": "es"}))
    assert [t.language for t in load_dir(tmp_path)] == ["en_US", "es"]


def test_yaml_numbers_that_should_be_strings_are_reported_not_crashed_on(tmp_path):
    path = tmp_path / "call.yaml"
    path.write_text("""\
name: call_us
language: en_US
category: UTILITY
components:
  - type: BODY
    text: Your order has shipped. Call us with any questions.
  - type: BUTTONS
    buttons:
      - type: PHONE_NUMBER
        text: Call
        phone_number: 15550051310
""")
    [template] = load_file(path)
    [issue] = validate(template)
    assert (issue.rule, issue.pointer) == ("phone_number_invalid", "/components/1/buttons/0/phone_number")
    assert "quote it" in issue.message


# --- The Template view --------------------------------------------------------------------------
def test_template_view_over_meta_shape():
    doc = fixture("seasonal_promotion")
    template = Template.from_meta(doc)
    assert (template.name, template.language, template.category) == ("seasonal_promotion", "en_US", "MARKETING")
    assert template.parameter_format == "POSITIONAL"             # Meta's default when absent
    assert template.component("body")["text"].startswith("Shop now")
    assert template.component("CAROUSEL") is None
    assert [b["text"] for b in template.buttons()] == ["Unsubscribe from Promos", "Unsubscribe from All"]
    assert template.parameters() == {"header": ("1",), "body": ("1", "2", "3")}
    assert template.status is None and not template.sendable
    # Read-only, and independent of the dict it came from.
    with pytest.raises(TypeError):
        template.doc["name"] = "other"
    doc["name"] = "changed"
    assert template.name == "seasonal_promotion"
    copy_ = template.to_meta()
    copy_["components"].append({"type": "FOOTER", "text": "x"})
    assert len(template.components) == 4
    with pytest.raises(TypeError):
        Template.from_meta(["not", "a", "mapping"])


def test_template_list_fields_and_parameters_in_send_order():
    template = Template.from_meta({
        "id": 594425479261596, "name": "named_offer", "language": "en", "category": "marketing",
        "parameter_format": "named", "status": "approved", "rejected_reason": "NONE",
        "quality_score": {"score": "GREEN"},
        "components": [
            {"type": "BODY", "text": "Hi {{first_name}}, {{first_name}} gets {{discount}} off; code {{2}}."},
            {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Stop"},
                                            {"type": "URL", "text": "Shop", "url": "https://x.example/{{code}}"}]},
        ]})
    assert (template.id, template.category, template.parameter_format, template.status) == (
        "594425479261596", "MARKETING", "NAMED", "APPROVED")
    assert template.sendable and template.quality_score == {"score": "GREEN"}
    assert template.parameters() == {"body": ("2", "first_name", "discount"), "button:1": ("code",)}
    positional = Template.from_meta({"components": [{"type": "BODY", "text": "{{3}} then {{1}} and {{2}}"}]})
    assert positional.parameters() == {"body": ("1", "2", "3")}


def test_authentication_and_carousel_parameters():
    assert Template.from_meta(fixture("zero_tap_auth_template")).parameters() == {
        "body": ("1",), "button:0": ("1",)}
    assert Template.from_meta(fixture("carousel_template_media_cards_v1")).parameters() == {
        "body": ("1", "2", "3"), "card:0:button:1": ("1",), "card:1:button:1": ("1",),
        "card:2:button:1": ("1",)}


def test_placeholders():
    found = placeholders("Hi {{1}}, {{first_name}} and {{ bad }}")
    assert [(p.name, p.kind) for p in found] == [("1", "positional"), ("first_name", "named"), (" bad ", "invalid")]
    assert placeholders(None) == []


@pytest.mark.parametrize("status", sorted(STATUSES))
def test_only_approved_is_sendable(status):
    assert sendable(status) is (status == APPROVED)


def test_sendable_is_case_blind_and_refuses_non_strings():
    assert sendable("approved") and sendable(" APPROVED ")
    assert not sendable(None) and not sendable("") and not sendable(1)


# --- The rule table -----------------------------------------------------------------------------
def marketing() -> dict:
    """A valid definition using most features: components 0 HEADER, 1 BODY, 2 FOOTER, 3 BUTTONS."""
    return {
        "name": "spring_sale", "language": "en_US", "category": "MARKETING",
        "components": [
            {"type": "HEADER", "format": "TEXT", "text": "Our {{1}} is on!",
             "example": {"header_text": ["Spring Sale"]}},
            {"type": "BODY", "text": "Hi {{1}}, use code {{2}} for 20% off.",
             "example": {"body_text": [["Ana", "SPRING20"]]}},
            {"type": "FOOTER", "text": "Reply STOP to opt out"},
            {"type": "BUTTONS", "buttons": [
                {"type": "QUICK_REPLY", "text": "Stop promotions"},
                {"type": "URL", "text": "Shop now", "url": "https://shop.example.com/sale/{{1}}",
                 "example": ["spring"]},
                {"type": "PHONE_NUMBER", "text": "Call us", "phone_number": "+15550051310"},
            ]},
        ]}


def named() -> dict:
    return {
        "name": "spring_sale_named", "language": "en", "category": "MARKETING", "parameter_format": "NAMED",
        "components": [
            {"type": "HEADER", "format": "TEXT", "text": "Our {{sale}} is on!",
             "example": {"header_text_named_params": [{"param_name": "sale", "example": "Spring Sale"}]}},
            {"type": "BODY", "text": "Hi {{first_name}}, use code {{code}} today.",
             "example": {"body_text_named_params": [{"param_name": "first_name", "example": "Ana"},
                                                    {"param_name": "code", "example": "SPRING20"}]}},
            {"type": "BUTTONS", "buttons": [
                {"type": "URL", "text": "Shop now", "url": "https://shop.example.com/{{code}}",
                 "example": ["SPRING20"]}]},
        ]}


def auth() -> dict:
    return fixture("authentication_code_copy_code_button")   # 0 BODY, 1 FOOTER, 2 BUTTONS


def one_tap() -> dict:
    return fixture("authentication_code_autofill_button")


def zero_tap() -> dict:
    return fixture("zero_tap_auth_template")


def offer() -> dict:
    return fixture("limited_time_offer_caribbean_pkg_2023")  # 0 HEADER, 1 LTO, 2 BODY, 3 BUTTONS


def carousel() -> dict:
    return fixture("carousel_template_media_cards_v1")       # 0 BODY, 1 CAROUSEL (3 cards)


def products() -> dict:
    return fixture("carousel_template_product_cards_v1")     # 0 BODY, 1 CAROUSEL (2 cards)


def _walk(doc, pointer):
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
    parent = doc
    for part in parts[:-1]:
        parent = parent[int(part)] if isinstance(parent, list) else parent[part]
    last = parts[-1]
    return parent, (int(last) if isinstance(parent, list) and last != "-" else last)


def apply(doc, ops):
    """ops: ("set", pointer, value) | ("del", pointer) | ("add", pointer, value) (list insert; "-" appends)
    | ("cards", relative pointer, value) (set the same thing in every carousel card)."""
    for op in ops:
        if op[0] == "cards":
            for i in range(len(doc["components"][1]["cards"])):
                apply(doc, [("set", f"/components/1/cards/{i}{op[1]}", op[2])])
            continue
        parent, key = _walk(doc, op[1])
        if op[0] == "set":
            parent[key] = op[2]
        elif op[0] == "del":
            del parent[key]
        elif key == "-":
            parent.append(op[2])
        else:
            parent.insert(key, op[2])
    return doc


def qr(text="Yes"):
    return {"type": "QUICK_REPLY", "text": text}


def url(u="https://shop.example.com/x"):
    return {"type": "URL", "text": "Open", "url": u}


VALID = [
    ("marketing", marketing, []),
    ("named", named, []),
    ("lowercase enums as Meta's create accepts", marketing,
     [("set", "/category", "marketing"), ("set", "/components/0/type", "header"),
      ("set", "/components/0/format", "text"), ("set", "/components/3/buttons/0/type", "quick_reply")]),
    ("positional out of order and repeated", marketing,
     [("set", "/components/1/text", "Hi {{2}}, your code {{1}} works; {{2}}, enjoy it.")]),
    ("parameter followed by punctuation ends fine", marketing,
     [("set", "/components/1/text", "Hi {{1}}, your code is {{2}}.")]),
    ("parameters separated by punctuation", marketing,
     [("set", "/components/1/text", "Dear {{1}},{{2}} is your code today.")]),
    ("no parameters, no examples", marketing,
     [("set", "/components/1", {"type": "BODY", "text": "Our spring sale starts today."})]),
    ("header text without a parameter", marketing,
     [("set", "/components/0", {"type": "HEADER", "format": "TEXT", "text": "Spring sale"})]),
    ("location header", marketing, [("set", "/components/0", {"type": "HEADER", "format": "LOCATION"})]),
    ("video header", marketing,
     [("set", "/components/0", {"type": "HEADER", "format": "VIDEO", "example": {"header_handle": ["4::dm..."]}})]),
    ("quick replies after the call-to-action buttons", marketing,
     [("add", "/components/3/buttons/-", qr("No")), ("set", "/components/3/buttons/0", url()),
      ("add", "/components/3/buttons/-", qr("Maybe"))]),
    ("ten buttons", marketing, [("set", "/components/3/buttons", [qr(f"Option {i}") for i in range(10)])]),
    ("two URL buttons, copy code and voice call", marketing,
     [("add", "/components/3/buttons/-", url()),
      ("add", "/components/3/buttons/-", {"type": "COPY_CODE", "example": "SPRING20SPRING20ABCD"}),
      ("add", "/components/3/buttons/-", {"type": "VOICE_CALL", "text": "Call on WhatsApp"})]),
    ("flow button", marketing,
     [("set", "/components/3/buttons", [{"type": "FLOW", "text": "Book", "flow_id": "1234567890"}])]),
    ("phone number with spaces", marketing,
     [("set", "/components/3/buttons/2/phone_number", "+1 (555) 005-1310")]),
    ("auth without footer", auth, [("del", "/components/1")]),
    ("auth expiry at both ends", auth, [("set", "/components/1/code_expiration_minutes", 1)]),
    ("auth expiry 90", auth, [("set", "/components/1/code_expiration_minutes", 90)]),
    ("one tap, older one-app form", one_tap,
     [("del", "/components/2/buttons/0/supported_apps"),
      ("set", "/components/2/buttons/0/package_name", "com.example.luckyshrub"),
      ("set", "/components/2/buttons/0/signature_hash", "K8a/AINcGX7")]),
    ("zero tap", zero_tap, []),
    ("limited-time offer", offer, []),
    ("carousel cards without bodies", carousel, [("del", f"/components/1/cards/{n}/components/1") for n in range(3)]),
    ("carousel card body with a parameter", carousel,
     [("cards", "/components/1", {"type": "BODY", "text": "Our {{1}} succulent is rare.",
                                  "example": {"body_text": [["Blue Elf"]]}})]),
]


@pytest.mark.parametrize("factory, ops", [c[1:] for c in VALID], ids=[c[0] for c in VALID])
def test_valid_definitions(factory, ops):
    issues = validate(apply(factory(), ops))
    assert issues == [], [str(i) for i in issues]


LONG = "x" * 2000
INVALID = [
    # --- top level
    ("name missing", marketing, [("del", "/name")], [("name_missing", "/name")]),
    ("name with capitals and spaces", marketing, [("set", "/name", "Spring Sale")], [("name_invalid", "/name")]),
    ("name with a hyphen", marketing, [("set", "/name", "spring-sale")], [("name_invalid", "/name")]),
    ("name too long", marketing, [("set", "/name", "a" * 513)], [("name_too_long", "/name")]),
    ("language missing", marketing, [("del", "/language")], [("language_missing", "/language")]),
    ("language with a hyphen", marketing, [("set", "/language", "en-US")], [("language_invalid", "/language")]),
    ("language spelled out", marketing, [("set", "/language", "English")], [("language_invalid", "/language")]),
    ("category missing", marketing, [("del", "/category")], [("category_invalid", "/category")]),
    ("category unknown", marketing, [("set", "/category", "PROMOTION")], [("category_invalid", "/category")]),
    ("category legacy", marketing, [("set", "/category", "TRANSACTIONAL")], [("category_invalid", "/category")]),
    ("parameter_format unknown", marketing, [("set", "/parameter_format", "MIXED")],
     [("parameter_format_invalid", "/parameter_format")]),
    # --- components
    ("components not a list", marketing, [("set", "/components", {"type": "BODY"})],
     [("components_missing", "/components")]),
    ("component not an object", marketing, [("add", "/components/-", "BODY")],
     [("component_invalid", "/components/4")]),
    ("component without type", marketing, [("add", "/components/-", {"text": "x"})],
     [("component_invalid", "/components/4")]),
    ("component type unknown", marketing, [("add", "/components/-", {"type": "STICKER"})],
     [("component_type_unknown", "/components/4/type")]),
    ("body missing", marketing, [("del", "/components/1")], [("body_missing", "/components")]),
    ("two footers", marketing, [("add", "/components/-", {"type": "FOOTER", "text": "Thanks"})],
     [("duplicate_component", "/components/4")]),
    ("two bodies", marketing, [("add", "/components/-", {"type": "BODY", "text": "More text here."})],
     [("duplicate_component", "/components/4")]),
    # --- header
    ("header format unknown", marketing, [("set", "/components/0/format", "AUDIO")],
     [("header_format_invalid", "/components/0/format")]),
    ("header format missing", marketing, [("del", "/components/0/format")],
     [("header_format_invalid", "/components/0/format")]),
    ("header text missing", marketing, [("del", "/components/0/text")],
     [("header_text_missing", "/components/0/text")]),
    ("header too long", marketing, [("set", "/components/0/text", "Our big seasonal {{1}} is on, with " + "x" * 30)],
     [("header_too_long", "/components/0/text")]),
    ("header with two parameters", marketing, [("set", "/components/0/text", "Our {{1}} is on, {{2}}!")],
     [("header_too_many_parameters", "/components/0/text")]),
    ("image header without handle", marketing, [("set", "/components/0", {"type": "HEADER", "format": "IMAGE"})],
     [("header_handle_missing", "/components/0/example/header_handle")]),
    ("document header with empty handle list", marketing,
     [("set", "/components/0", {"type": "HEADER", "format": "DOCUMENT", "example": {"header_handle": []}})],
     [("header_handle_missing", "/components/0/example/header_handle")]),
    ("header example missing", marketing, [("del", "/components/0/example")],
     [("example_missing", "/components/0/example/header_text")]),
    ("header example nested like a body's", marketing,
     [("set", "/components/0/example/header_text", [["Spring Sale"]])],
     [("example_malformed", "/components/0/example/header_text")]),
    ("header example count", marketing, [("set", "/components/0/example/header_text", ["Spring", "Sale"])],
     [("example_count_mismatch", "/components/0/example/header_text")]),
    # --- body
    ("body text missing", marketing, [("del", "/components/1/text")],
     [("body_text_missing", "/components/1/text")]),
    ("body too long", marketing, [("set", "/components/1/text", "Hi {{1}}, use code {{2}} now. " + "x" * 1000)],
     [("body_too_long", "/components/1/text")]),
    ("positional gap", marketing, [("set", "/components/1/text", "Hi {{1}}, use code {{3}} for 20% off.")],
     [("parameters_not_contiguous", "/components/1/text")]),
    ("positional not from 1", marketing, [("set", "/components/1/text", "Hi {{2}}, use code {{3}} for 20% off.")],
     [("parameters_not_contiguous", "/components/1/text")]),
    ("named parameters in a positional template", marketing,
     [("set", "/components/1/text", "Hi {{first_name}}, use code {{code}} for 20% off.")],
     [("parameter_format_mismatch", "/components/1/text")]),
    ("numbered parameters in a named template", named,
     [("set", "/components/1/text", "Hi {{1}}, use code {{2}} today.")],
     [("parameter_format_mismatch", "/components/1/text")]),
    ("mixed kinds", marketing, [("set", "/components/1/text", "Hi {{1}}, use code {{code}} for 20% off.")],
     [("parameters_mixed", "/components/1/text")]),
    ("parameter with spaces and capitals", marketing,
     [("set", "/components/1/text", "Hi {{1}}, use code {{2}} now, {{First Name}}.")],
     [("parameter_name_invalid", "/components/1/text")]),
    ("named parameter with a hyphen", named,
     [("set", "/components/1/text", "Hi {{first_name}}, use code {{code}} today, {{last-name}}.")],
     [("parameter_name_invalid", "/components/1/text")]),
    ("unbalanced braces", marketing,
     [("set", "/components/1/text", "Hi {{1}}, use code {2}} for 20% off."),
      ("set", "/components/1/example/body_text", [["Ana"]])],
     [("parameter_braces_unbalanced", "/components/1/text")]),
    ("adjacent parameters", marketing, [("set", "/components/1/text", "Hi {{1}}{{2}}, welcome back.")],
     [("parameters_adjacent", "/components/1/text")]),
    ("parameters separated by a space only", marketing,
     [("set", "/components/1/text", "Hi {{1}} {{2}}, welcome back.")],
     [("parameters_adjacent", "/components/1/text")]),
    ("body starts with a parameter", marketing, [("set", "/components/1/text", "{{1}}, use code {{2}} today.")],
     [("body_starts_with_parameter", "/components/1/text")]),
    ("body ends with a parameter", marketing, [("set", "/components/1/text", "Hi {{1}}, use code {{2}}  ")],
     [("body_ends_with_parameter", "/components/1/text")]),
    ("body example missing", marketing, [("del", "/components/1/example")],
     [("example_missing", "/components/1/example/body_text")]),
    ("body example flat", marketing, [("set", "/components/1/example/body_text", ["Ana", "SPRING20"])],
     [("example_malformed", "/components/1/example/body_text")]),
    ("body example not a string", marketing, [("set", "/components/1/example/body_text", [["Ana", 20]])],
     [("example_malformed", "/components/1/example/body_text")]),
    ("body example too few", marketing, [("set", "/components/1/example/body_text", [["Ana"]])],
     [("example_count_mismatch", "/components/1/example/body_text/0")]),
    ("body examples without parameters", marketing,
     [("set", "/components/1/text", "Our spring sale starts today.")],
     [("example_count_mismatch", "/components/1/example/body_text")]),
    ("named body with positional examples", named,
     [("set", "/components/1/example", {"body_text": [["Ana", "SPRING20"]]})],
     [("example_missing", "/components/1/example/body_text_named_params")]),
    ("named example for another name", named,
     [("set", "/components/1/example/body_text_named_params/1/param_name", "coupon")],
     [("example_names_mismatch", "/components/1/example/body_text_named_params")]),
    ("named example list malformed", named,
     [("set", "/components/1/example/body_text_named_params", [{"param_name": "first_name"}])],
     [("example_malformed", "/components/1/example/body_text_named_params")]),
    ("named header example missing", named, [("del", "/components/0/example")],
     [("example_missing", "/components/0/example/header_text_named_params")]),
    # --- footer
    ("footer text missing", marketing, [("set", "/components/2/text", "")],
     [("footer_text_missing", "/components/2/text")]),
    ("footer too long", marketing, [("set", "/components/2/text", "x" * 61)],
     [("footer_too_long", "/components/2/text")]),
    ("footer with a parameter", marketing, [("set", "/components/2/text", "Sent to {{1}}")],
     [("footer_has_parameters", "/components/2/text")]),
    # --- buttons
    ("buttons empty", marketing, [("set", "/components/3/buttons", [])],
     [("buttons_empty", "/components/3/buttons")]),
    ("button not an object", marketing, [("set", "/components/3/buttons/0", "Stop")],
     [("button_invalid", "/components/3/buttons/0")]),
    ("button type unknown", marketing, [("set", "/components/3/buttons/0/type", "EMAIL")],
     [("button_type_unknown", "/components/3/buttons/0/type")]),
    ("eleven buttons", marketing,
     [("set", "/components/3/buttons", [qr(f"Option {i}") for i in range(9)] + [url(), url()])],
     [("too_many_buttons", "/components/3/buttons/10")]),
    ("three URL buttons", marketing,
     [("add", "/components/3/buttons/-", url()), ("add", "/components/3/buttons/-", url())],
     [("too_many_url_buttons", "/components/3/buttons/4")]),
    ("two phone numbers", marketing, [("add", "/components/3/buttons/-", {"type": "PHONE_NUMBER", "text": "Call",
                                                                        "phone_number": "+15550051311"})],
     [("too_many_phone_number_buttons", "/components/3/buttons/3")]),
    ("two copy codes", marketing, [("add", "/components/3/buttons/-", {"type": "COPY_CODE", "example": "A1"}),
                                   ("add", "/components/3/buttons/-", {"type": "COPY_CODE", "example": "B2"})],
     [("too_many_copy_code_buttons", "/components/3/buttons/4")]),
    ("two voice calls", marketing, [("add", "/components/3/buttons/-", {"type": "VOICE_CALL", "text": "Call"}),
                                    ("add", "/components/3/buttons/-", {"type": "VOICE_CALL", "text": "Call"})],
     [("too_many_voice_call_buttons", "/components/3/buttons/4")]),
    ("quick replies split", marketing, [("add", "/components/3/buttons/-", qr("No"))],
     [("quick_replies_not_grouped", "/components/3/buttons/3")]),
    ("button text missing", marketing, [("del", "/components/3/buttons/0/text")],
     [("button_text_missing", "/components/3/buttons/0/text")]),
    ("button text too long", marketing, [("set", "/components/3/buttons/0/text", "x" * 26)],
     [("button_text_too_long", "/components/3/buttons/0/text")]),
    ("url missing", marketing, [("del", "/components/3/buttons/1/url"), ("del", "/components/3/buttons/1/example")],
     [("url_missing", "/components/3/buttons/1/url")]),
    ("url too long", marketing, [("set", "/components/3/buttons/1/url", "https://shop.example.com/" + LONG + "{{1}}")],
     [("url_too_long", "/components/3/buttons/1/url")]),
    ("url not http", marketing, [("set", "/components/3/buttons/1/url", "shop.example.com/sale/{{1}}")],
     [("url_invalid", "/components/3/buttons/1/url")]),
    ("url with two parameters", marketing, [("set", "/components/3/buttons/1/url", "https://x.example/{{1}}/{{2}}")],
     [("url_too_many_parameters", "/components/3/buttons/1/url")]),
    ("url parameter in the middle", marketing, [("set", "/components/3/buttons/1/url", "https://x.example/{{1}}/info")],
     [("url_parameter_not_at_end", "/components/3/buttons/1/url")]),
    ("url parameter numbered 2", marketing, [("set", "/components/3/buttons/1/url", "https://x.example/{{2}}")],
     [("url_parameter_invalid", "/components/3/buttons/1/url")]),
    ("url named parameter in a positional template", marketing,
     [("set", "/components/3/buttons/1/url", "https://x.example/{{code}}")],
     [("url_parameter_invalid", "/components/3/buttons/1/url")]),
    ("url parameter without example", marketing, [("del", "/components/3/buttons/1/example")],
     [("example_missing", "/components/3/buttons/1/example")]),
    ("url example a bare string", marketing, [("set", "/components/3/buttons/1/example", "spring")],
     [("example_malformed", "/components/3/buttons/1/example")]),
    ("url example two values", marketing, [("set", "/components/3/buttons/1/example", ["a", "b"])],
     [("example_count_mismatch", "/components/3/buttons/1/example")]),
    ("static url with an example", marketing, [("set", "/components/3/buttons/1/url", "https://x.example/sale")],
     [("example_count_mismatch", "/components/3/buttons/1/example")]),
    ("phone number missing", marketing, [("del", "/components/3/buttons/2/phone_number")],
     [("phone_number_missing", "/components/3/buttons/2/phone_number")]),
    ("phone number words", marketing, [("set", "/components/3/buttons/2/phone_number", "call the shop")],
     [("phone_number_invalid", "/components/3/buttons/2/phone_number")]),
    ("phone number too long", marketing, [("set", "/components/3/buttons/2/phone_number", "+1 (555) 005-1310 000")],
     [("phone_number_invalid", "/components/3/buttons/2/phone_number")]),
    ("phone number too short", marketing, [("set", "/components/3/buttons/2/phone_number", "+123")],
     [("phone_number_invalid", "/components/3/buttons/2/phone_number")]),
    ("copy code without example", marketing, [("add", "/components/3/buttons/-", {"type": "COPY_CODE"})],
     [("example_missing", "/components/3/buttons/3/example")]),
    ("copy code too long", marketing, [("add", "/components/3/buttons/-", {"type": "COPY_CODE", "example": "C" * 21})],
     [("copy_code_example_too_long", "/components/3/buttons/3/example")]),
    ("flow button without a flow", marketing, [("set", "/components/3/buttons", [{"type": "FLOW", "text": "Book"}])],
     [("flow_button_target_invalid", "/components/3/buttons/0")]),
    ("flow button with two flows", marketing,
     [("set", "/components/3/buttons", [{"type": "FLOW", "text": "Book", "flow_id": "1", "flow_name": "booking"}])],
     [("flow_button_target_invalid", "/components/3/buttons/0")]),
    ("OTP button in a marketing template", marketing,
     [("add", "/components/3/buttons/-", {"type": "OTP", "otp_type": "COPY_CODE"})],
     [("otp_button_outside_authentication", "/components/3/buttons/3")]),
    # --- authentication
    ("auth with a header", auth, [("add", "/components/0", {"type": "HEADER", "format": "TEXT", "text": "Code"})],
     [("authentication_component_not_allowed", "/components/0")]),
    ("auth body with text", auth, [("set", "/components/0/text", "Your code is {{1}}.")],
     [("authentication_body_has_text", "/components/0/text")]),
    ("auth security recommendation not a boolean", auth, [("set", "/components/0/add_security_recommendation", "yes")],
     [("authentication_body_invalid", "/components/0/add_security_recommendation")]),
    ("auth footer with text", auth, [("set", "/components/1/text", "Expires soon")],
     [("authentication_footer_has_text", "/components/1/text")]),
    ("auth expiry 0", auth, [("set", "/components/1/code_expiration_minutes", 0)],
     [("code_expiration_out_of_range", "/components/1/code_expiration_minutes")]),
    ("auth expiry 91", auth, [("set", "/components/1/code_expiration_minutes", 91)],
     [("code_expiration_out_of_range", "/components/1/code_expiration_minutes")]),
    ("auth expiry as a string", auth, [("set", "/components/1/code_expiration_minutes", "5")],
     [("code_expiration_out_of_range", "/components/1/code_expiration_minutes")]),
    ("auth without buttons", auth, [("del", "/components/2")],
     [("authentication_otp_button_missing", "/components")]),
    ("auth with a quick reply instead", auth, [("set", "/components/2/buttons/0", qr())],
     [("authentication_button_not_allowed", "/components/2/buttons/0"),
      ("authentication_otp_button_missing", "/components")]),
    ("auth with two OTP buttons", auth,
     [("add", "/components/2/buttons/-", {"type": "OTP", "otp_type": "COPY_CODE"})],
     [("too_many_otp_buttons", "/components/2/buttons/1")]),
    ("auth otp type unknown", auth, [("set", "/components/2/buttons/0/otp_type", "SMS")],
     [("otp_type_invalid", "/components/2/buttons/0/otp_type")]),
    ("auth otp label too long", auth, [("set", "/components/2/buttons/0/text", "Copy the code to your clipboard")],
     [("button_text_too_long", "/components/2/buttons/0/text")]),
    ("one tap without apps", one_tap, [("del", "/components/2/buttons/0/supported_apps")],
     [("supported_apps_missing", "/components/2/buttons/0/supported_apps")]),
    ("one tap with six apps", one_tap,
     [("set", "/components/2/buttons/0/supported_apps",
       [{"package_name": f"com.example.app{i}", "signature_hash": "K8a/AINcGX7"} for i in range(6)])],
     [("too_many_supported_apps", "/components/2/buttons/0/supported_apps/5")]),
    ("one tap signature hash wrong length", one_tap,
     [("set", "/components/2/buttons/0/supported_apps/0/signature_hash", "K8a")],
     [("supported_app_invalid", "/components/2/buttons/0/supported_apps/0/signature_hash")]),
    ("one tap package name missing", one_tap, [("del", "/components/2/buttons/0/supported_apps/1/package_name")],
     [("supported_app_invalid", "/components/2/buttons/0/supported_apps/1/package_name")]),
    ("one tap autofill text too long", one_tap, [("set", "/components/2/buttons/0/autofill_text", "A" * 26)],
     [("button_text_too_long", "/components/2/buttons/0/autofill_text")]),
    ("zero tap terms not accepted", zero_tap, [("set", "/components/2/buttons/0/zero_tap_terms_accepted", False)],
     [("zero_tap_terms_not_accepted", "/components/2/buttons/0/zero_tap_terms_accepted")]),
    ("zero tap terms missing", zero_tap, [("del", "/components/2/buttons/0/zero_tap_terms_accepted")],
     [("zero_tap_terms_not_accepted", "/components/2/buttons/0/zero_tap_terms_accepted")]),
    # --- limited-time offer
    ("offer in a utility template", offer, [("set", "/category", "UTILITY")],
     [("limited_time_offer_not_marketing", "/components/1")]),
    ("offer text missing", offer, [("set", "/components/1/limited_time_offer", {"has_expiration": True})],
     [("limited_time_offer_text_missing", "/components/1/limited_time_offer/text")]),
    ("offer text too long", offer, [("set", "/components/1/limited_time_offer/text", "Expiring offer, hurry!")],
     [("limited_time_offer_text_too_long", "/components/1/limited_time_offer/text")]),
    ("offer with a footer", offer, [("add", "/components/3", {"type": "FOOTER", "text": "Terms apply"})],
     [("limited_time_offer_with_footer", "/components/3")]),
    # --- carousel
    ("carousel in a utility template", carousel, [("set", "/category", "UTILITY")],
     [("carousel_not_marketing", "/components/1")]),
    ("carousel with a footer", carousel, [("add", "/components/-", {"type": "FOOTER", "text": "Terms apply"})],
     [("carousel_component_not_allowed", "/components/2")]),
    ("carousel with one card", products, [("del", "/components/1/cards/1")],
     [("carousel_card_count", "/components/1/cards")]),
    ("carousel with eleven cards", products,
     [("set", "/components/1/cards", [copy.deepcopy(fixture("carousel_template_product_cards_v1")
                                                    ["components"][1]["cards"][0]) for _ in range(11)])],
     [("carousel_card_count", "/components/1/cards")]),
    ("carousel card not an object", carousel, [("set", "/components/1/cards/2", "card")],
     [("carousel_card_invalid", "/components/1/cards/2")]),
    ("carousel cards differ", carousel, [("del", "/components/1/cards/2/components/1")],
     [("carousel_cards_differ", "/components/1/cards/2")]),
    ("card with a footer", carousel, [("add", "/components/1/cards/0/components/-", {"type": "FOOTER", "text": "x"})],
     [("card_component_not_allowed", "/components/1/cards/0/components/3")]),
    ("cards without headers", products, [("cards", "/components/0", {"type": "BODY", "text": "A lovely plant."})],
     [("card_header_missing", "/components/1/cards/0/components"),
      ("card_header_missing", "/components/1/cards/1/components")]),
    ("card header as text", products, [("cards", "/components/0", {"type": "HEADER", "format": "TEXT", "text": "Hi"})],
     [("header_format_invalid", "/components/1/cards/0/components/0/format"),
      ("header_format_invalid", "/components/1/cards/1/components/0/format")]),
    ("card image without handle", carousel, [("cards", "/components/0/example", {})],
     [("header_handle_missing", f"/components/1/cards/{n}/components/0/example/header_handle") for n in range(3)]),
    ("card body too long", carousel, [("set", "/components/1/cards/0/components/1/text", "x" * 161)],
     [("card_body_too_long", "/components/1/cards/0/components/1/text")]),
    ("card body with a parameter but no example", carousel,
     [("set", "/components/1/cards/1/components/1/text", "Our {{1}} succulent is rare.")],
     [("example_missing", "/components/1/cards/1/components/1/example/body_text")]),
    ("card with three buttons", carousel,
     [("cards", "/components/2/buttons", [qr("One"), qr("Two"), qr("Three")])],
     [("card_too_many_buttons", f"/components/1/cards/{n}/components/2/buttons/2") for n in range(3)]),
    ("card with a copy code button", carousel,
     [("cards", "/components/2/buttons/0", {"type": "COPY_CODE", "example": "RARE10"})],
     [("button_type_not_allowed", f"/components/1/cards/{n}/components/2/buttons/0/type") for n in range(3)]),
    ("card url parameter without example", carousel, [("del", "/components/1/cards/0/components/2/buttons/1/example")],
     [("example_missing", "/components/1/cards/0/components/2/buttons/1/example")]),
]


@pytest.mark.parametrize("factory, ops, expected", [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_definitions(factory, ops, expected):
    issues = validate(apply(factory(), ops))
    assert [(i.rule, i.pointer) for i in issues] == expected, [str(i) for i in issues]
    for issue in issues:
        assert isinstance(issue, Issue) and issue.message.endswith((".", ")")) and len(issue.message) > 30


def test_every_rule_slug_is_exercised():
    """Each slug validate() can produce has an invalid case above, and every literal slug in the
    module is in RULE_SLUGS (a guard for rules added later)."""
    import ast
    import templates_catalog.validate as module
    tree = ast.parse(Path(module.__file__).read_text())
    literal = {node.args[1].value for node in ast.walk(tree)
               if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Issue"
               and len(node.args) > 1 and isinstance(node.args[1], ast.Constant)}
    assert literal <= RULE_SLUGS
    covered = {rule for *_, expected in INVALID for rule, _ in expected} | {"not_an_object"}
    assert covered == RULE_SLUGS


def test_not_a_mapping():
    assert [(i.rule, i.pointer) for i in validate(["BODY"])] == [("not_an_object", "")]


def test_every_problem_is_reported_at_once():
    doc = apply(marketing(), [
        ("set", "/name", "Spring Sale!"),
        ("set", "/language", "en-us"),
        ("set", "/components/0/text", "{{1}} and {{2}} on sale"),
        ("set", "/components/1/text", "{{1}} {{3}}"),
        ("del", "/components/1/example"),
        ("set", "/components/2/text", "Hi {{1}}, " + "x" * 60),
        ("add", "/components/3/buttons/-", qr("Later")),
        ("set", "/components/3/buttons/1/url", "https://x.example/{{1}}/more"),
        ("set", "/components/3/buttons/2/phone_number", "ask us"),
    ])
    got = [(i.rule, i.pointer) for i in validate(doc)]
    assert got == [
        ("name_invalid", "/name"),
        ("language_invalid", "/language"),
        ("header_too_many_parameters", "/components/0/text"),
        ("parameters_not_contiguous", "/components/1/text"),
        ("parameters_adjacent", "/components/1/text"),
        ("body_starts_with_parameter", "/components/1/text"),
        ("body_ends_with_parameter", "/components/1/text"),
        ("example_missing", "/components/1/example/body_text"),
        ("footer_too_long", "/components/2/text"),
        ("footer_has_parameters", "/components/2/text"),
        ("quick_replies_not_grouped", "/components/3/buttons/3"),
        ("url_parameter_not_at_end", "/components/3/buttons/1/url"),
        ("phone_number_invalid", "/components/3/buttons/2/phone_number"),
    ]


def test_messages_name_the_component_the_limit_and_the_fix():
    [issue] = validate(apply(marketing(), [("set", "/components/1/text", "Hi {{1}}, code {{2}}. " + "x" * 1100)]))
    assert issue.message.startswith("BODY text is 1,122 characters long")
    assert "1,024" in issue.message and "Shorten" in issue.message
    assert str(issue) == f"/components/1/text: {issue.message} [body_too_long]"
    [issue] = validate(apply(marketing(), [("set", "/name", "Spring Sale")]))
    assert "'spring_sale'" in issue.message


def test_rules_are_small_named_functions():
    assert all(callable(rule) and rule.__name__.startswith("check_") for rule in RULES)
