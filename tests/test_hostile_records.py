"""Records that used to pass silently (issue 15): tool calls, tool definitions, names, image URLs.

Each case is refused with its stable code, its line and its field; the well-formed versions of the
same records still pass.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import finetune_hub as fh

JOB_LEVEL = {
    "model_shutdown_announced",
    "fine_tuning_ending_announced",
    "fine_tuning_restricted",
    "model_legacy",
    "model_deprecated",
    "too_few_records",
}


def call(name="get_weather", arguments='{"city": "Paris"}', **extra):
    fn = {"name": name, "arguments": arguments, **extra}
    return {"id": "call_1", "type": "function", "function": fn}


def tool(name="get_weather"):
    params = {"type": "object", "properties": {"city": {"type": "string"}}}
    return {"type": "function", "function": {"name": name, "parameters": params}}


def tool_chat(tool_calls, tools=None, **assistant):
    record = {
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": None, "tool_calls": tool_calls, **assistant},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
            {"role": "assistant", "content": "Sunny."},
        ]
    }
    if tools is not None:
        record["tools"] = tools
    return record


def image_chat(url):
    part = {"type": "image_url", "image_url": {"url": url}}
    return {
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "What is this?"}, part]},
            {"role": "assistant", "content": "A cat."},
        ]
    }


def problems(tmp_path: Path, records: list, model: str = "gpt-4o") -> list[tuple]:
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    report = fh.validate(path, provider="openai", base_model=model)
    return [(i.line, i.code, i.field) for i in report.issues() if i.code not in JOB_LEVEL]


def only(tmp_path: Path, record: dict, **kwargs) -> list[tuple]:
    return problems(tmp_path, [record], **kwargs)


def test_well_formed_tool_calls_tools_and_images_pass(tmp_path):
    records = [
        tool_chat([call()], tools=[tool()]),
        tool_chat([call(arguments="{}")], tools=[tool()], name="planner"),
        image_chat("https://example.com/cat.png"),
        image_chat("data:image/png;base64,iVBORw0KGgo="),
        # SDK dumps write null / [] for "no tool calls"
        {
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "hello", "tool_calls": None},
            ]
        },
        {
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "hello!", "tool_calls": []},
            ]
        },
        # the legacy function_call / functions shapes
        {
            "messages": [
                {"role": "user", "content": "Weather?"},
                {"role": "assistant", "function_call": {"name": "f", "arguments": '{"a": 1}'}},
                {"role": "function", "name": "f", "content": "sunny"},
                {"role": "assistant", "content": "Sunny."},
            ],
            "functions": [{"name": "f", "parameters": {"type": "object"}}],
        },
    ]
    assert problems(tmp_path, records) == []


def test_tool_calls_given_as_an_object_is_an_error(tmp_path):
    assert only(tmp_path, tool_chat(call())) == [(1, "invalid_tool_call", "messages[1].tool_calls")]


@pytest.mark.parametrize(
    ("function", "why"),
    [
        ({"name": "get_weather"}, "is missing"),
        ({"name": "get_weather", "arguments": {"city": "Paris"}}, "found a JSON object"),
        ({"name": "get_weather", "arguments": "city=Paris"}, "is not valid JSON"),
        ({"name": "get_weather", "arguments": ""}, "is not valid JSON"),
        ({"name": "get_weather", "arguments": '["Paris"]'}, "must hold a JSON object"),
        ({"name": "get_weather", "arguments": None}, "found a JSON null"),
    ],
)
def test_arguments_must_be_a_string_holding_a_json_object(tmp_path, function, why):
    record = tool_chat([{"id": "call_1", "type": "function", "function": function}])
    path = tmp_path / "data.jsonl"
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    report = fh.validate(path, provider="openai", base_model="gpt-4o")
    [issue] = report.issues("invalid_tool_call")
    assert (issue.line, issue.field) == (1, "messages[1].tool_calls[0].function.arguments")
    assert why in issue.message and issue.is_error


@pytest.mark.parametrize(
    ("function", "found"),
    [({"arguments": "{}"}, "missing"), ({"name": 7, "arguments": "{}"}, "found number")],
)
def test_a_called_function_needs_a_string_name(tmp_path, function, found):
    record = tool_chat([{"id": "call_1", "type": "function", "function": function}])
    path = tmp_path / "data.jsonl"
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    [issue] = fh.validate(path, provider="openai", base_model="gpt-4o").issues("invalid_tool_call")
    assert issue.field == "messages[1].tool_calls[0].function.name" and found in issue.message


def test_a_tool_call_without_a_function_object(tmp_path):
    record = tool_chat([{"id": "call_1", "type": "function", "name": "f"}])
    assert only(tmp_path, record) == [(1, "invalid_tool_call", "messages[1].tool_calls[0]")]


def test_legacy_function_call_is_checked_the_same_way(tmp_path):
    record = tool_chat(None, function_call={"name": "f", "arguments": {"a": 1}})
    assert only(tmp_path, record) == [
        (1, "invalid_tool_call", "messages[1].function_call.arguments")
    ]
    record = tool_chat(None, function_call="auto")
    assert only(tmp_path, record) == [(1, "invalid_tool_call", "messages[1].function_call")]


def test_tools_entries_need_a_function_with_a_name(tmp_path):
    assert only(tmp_path, tool_chat([call()], tools=[{"type": "function"}])) == [
        (1, "invalid_tools", "tools[0]")
    ]
    unnamed = {"type": "function", "function": {"parameters": {"type": "object"}}}
    assert only(tmp_path, tool_chat([call()], tools=[tool(), unnamed])) == [
        (1, "invalid_tools", "tools[1].function.name")
    ]
    numbered = {"type": "function", "function": {"name": 3}}
    assert only(tmp_path, tool_chat([call()], tools=[numbered])) == [
        (1, "invalid_tools", "tools[0].function.name")
    ]
    bad_schema = {"type": "function", "function": {"name": "f", "parameters": "city"}}
    assert only(tmp_path, tool_chat([call()], tools=[bad_schema])) == [
        (1, "invalid_tools", "tools[0].function.parameters")
    ]
    assert only(tmp_path, tool_chat([call()], tools={"get_weather": tool()})) == [
        (1, "invalid_tools", "tools")
    ]
    assert only(tmp_path, tool_chat([call()], tools=["get_weather"])) == [
        (1, "invalid_tools", "tools[0]")
    ]


def test_legacy_functions_entries_need_a_name(tmp_path):
    record = tool_chat([call()])
    record["functions"] = [{"parameters": {"type": "object"}}]
    assert only(tmp_path, record) == [(1, "invalid_tools", "functions[0].name")]


@pytest.mark.parametrize("name", [5, 1.5, True, ["bot"], {"n": 1}, None])
def test_a_message_name_must_be_a_string(tmp_path, name):
    record = {
        "messages": [
            {"role": "user", "content": "hi", "name": name},
            {"role": "assistant", "content": "hello"},
        ]
    }
    assert only(tmp_path, record) == [(1, "invalid_type", "messages[0].name")]


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "http://example.com/cat.png",
        "file:///etc/passwd",
        "ftp://example.com/cat.png",
        "data:text/html,<script>alert(1)</script>",
        "//example.com/cat.png",
        "https://",
        "",
        42,
        None,
    ],
)
def test_image_urls_are_https_or_data_uris_only(tmp_path, url):
    issues = only(tmp_path, image_chat(url))
    assert issues == [(1, "invalid_image", "messages[0].content[1].image_url.url")]


def test_image_url_scheme_is_case_insensitive(tmp_path):
    assert only(tmp_path, image_chat("HTTPS://example.com/cat.png")) == []
    assert only(tmp_path, image_chat("DATA:image/jpeg;base64,/9j/4AAQ")) == []


def test_tool_checks_apply_to_preference_and_rft_records(tmp_path):
    preference = {
        "input": {
            "messages": [{"role": "user", "content": "Weather?"}],
            "tools": [{"type": "function"}],
        },
        "preferred_output": [
            {"role": "assistant", "content": None, "tool_calls": [call(arguments="x")]}
        ],
        "non_preferred_output": [{"role": "assistant", "content": "No idea."}],
    }
    path = tmp_path / "pref.jsonl"
    path.write_text(json.dumps(preference) + "\n", encoding="utf-8")
    report = fh.validate(path, provider="openai", base_model="gpt-4.1-mini", method="dpo")
    found = {(i.line, i.code, i.field) for i in report.issues() if i.code not in JOB_LEVEL}
    assert found == {
        (1, "invalid_tools", "input.tools[0]"),
        (1, "invalid_tool_call", "preferred_output[0].tool_calls[0].function.arguments"),
    }


def test_the_codes_are_documented():
    docs = (Path(__file__).resolve().parents[1] / "docs" / "validation.md").read_text("utf-8")
    for code in ("invalid_tool_call", "invalid_tools", "invalid_type", "invalid_image"):
        assert f"`{code}`" in docs
    assert "javascript:" in docs and "JSON object" in docs


@pytest.mark.parametrize("role", [["user"], {"name": "user"}, 3, None])
def test_a_role_that_is_not_a_string_is_reported_not_a_crash(tmp_path, role):
    """`{"role": ["user"]}` once raised TypeError (an unhashable role) from inside the scan."""
    record = {"messages": [{"role": role, "content": "Hi"}, {"role": "assistant", "content": "Yo"}]}
    found = only(tmp_path, record)
    assert found and all(line == 1 for line, _, _ in found)
    assert any(field == "messages[0].role" for _, _, field in found), found
