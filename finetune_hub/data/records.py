"""Structural checks for each record format, and what each record contributes to token counts.

A checker reads one record, reports every schema problem through `emit(code, field, message)`,
and returns an `Example`: the texts to count (with their field paths and whether they are trained
on), the sequence of conversation roles, and media counts. Provider rules (limits, role order,
forbidden strings) are applied later by the validator; here lives only what a format *is*.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import orjson

from finetune_hub.data.formats import DataFormat

# What each text is for token accounting.
PROMPT, TARGET, CHOSEN, REJECTED = 0, 1, 2, 3

Emit = Callable[..., None]  # emit(code, field, message, warning=False)


class Example:
    """What one record contributes to the statistics: its texts grouped by what they are for
    (`PROMPT`, `TARGET`, `CHOSEN`, `REJECTED`), its conversation roles, and media counts.

    Field paths of texts are not kept (they are found again with `find_path` when a problem needs
    one), which keeps this object cheap on the validator's hot path.
    """

    __slots__ = ("groups", "roles", "role_paths", "images", "tools")

    def __init__(self) -> None:
        self.groups: list[list[str]] = [[], [], _NONE, _NONE]
        self.roles: list[str] = []
        self.role_paths: list[str | int] = []  # an int i stands for "messages[i]"
        self.images = 0
        self.tools = False

    def add(self, text: str, path: str, kind: int) -> None:
        group = self.groups[kind]
        if group is _NONE:
            group = self.groups[kind] = []
        group.append(text)

    @property
    def texts(self) -> list[str]:
        """All texts, prompt first, then target, chosen and rejected."""
        return [t for group in self.groups for t in group]

    def role_path(self, k: int) -> str:
        p = self.role_paths[k]
        return f"messages[{p}]" if type(p) is int else p


_NONE: list[str] = []  # shared placeholder for the preference groups most records never use
_new_example = object.__new__


def find_path(record: Any, target: str) -> str | None:
    """The field path (`messages[2].content`) of the string object `target` inside `record`."""
    stack: list[tuple[Any, str]] = [(record, "")]
    while stack:
        node, path = stack.pop()
        if node is target:
            return path or None
        if type(node) is dict:
            stack.extend((v, f"{path}.{k}" if path else str(k)) for k, v in node.items())
        elif type(node) is list:
            stack.extend((v, f"{path}[{i}]") for i, v in enumerate(node))
    return None


_CHAT_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_PLAIN_ROLES = frozenset({"system", "developer", "user", "assistant"})
_MESSAGE_KEYS = frozenset(
    {"role", "content", "name", "weight", "tool_calls", "tool_call_id", "function_call", "refusal"}
)
_CHAT_TOP = frozenset({"messages", "tools", "parallel_tool_calls", "functions", "metadata"})


def _is_blank(text: str) -> bool:
    return not text or text.isspace()


def _text(value: Any, path: str, emit: Emit, *, required: bool = True) -> str | None:
    if value is None:
        if required:
            emit("missing_field", path, f"{path} is missing")
        return None
    if not isinstance(value, str):
        emit("invalid_type", path, f"{path} must be a string, found {type(value).__name__}")
        return None
    if _is_blank(value):
        emit("empty_content", path, f"{path} is empty")
    return value


def _check_messages(
    messages: Any,
    ex: Example,
    emit: Emit,
    *,
    base: str = "messages",
    kind_for: Callable[[str, Any], int] | None = None,
) -> None:
    if not isinstance(messages, list) or not messages:
        emit("missing_messages", base, f"{base} must be a non-empty list of messages")
        return
    fast = kind_for is None and base == "messages"
    # bound once per record for the fast path (groups PROMPT and TARGET are never replaced)
    add_role, add_path = ex.roles.append, ex.role_paths.append
    add_prompt, add_target = ex.groups[PROMPT].append, ex.groups[TARGET].append
    for i, m in enumerate(messages):
        if (
            fast and type(m) is dict and len(m) == 2
        ):  # the common {"role", "content": "<text>"} message
            role = m.get("role")
            content = m.get("content")
            if (
                type(content) is str
                and type(role) is str  # an unhashable role (a list) is no set member
                and role in _PLAIN_ROLES
                and content
                and not content.isspace()
            ):
                add_role(role)
                add_path(i)
                if role == "assistant":
                    add_target(content)
                else:
                    add_prompt(content)
                continue
        path = f"{base}[{i}]"
        if type(m) is not dict:
            emit("invalid_message", path, f"{path} must be an object with role and content")
            continue
        role = m.get("role")
        if not isinstance(role, str):
            emit("missing_role", f"{path}.role", f"{path} has no role")
            continue
        if role not in _CHAT_ROLES:
            emit(
                "unknown_role",
                f"{path}.role",
                f"unknown role {role!r}; roles are {', '.join(sorted(_CHAT_ROLES))}",
            )
        ex.roles.append(role)
        ex.role_paths.append(path)
        weight = m.get("weight")
        kind = (
            kind_for(role, m)
            if kind_for
            else (TARGET if role == "assistant" and weight != 0 else PROMPT)
        )
        if weight is not None:
            if role != "assistant":
                emit(
                    "weight_not_allowed",
                    f"{path}.weight",
                    f"weight is only allowed on assistant messages, not {role}",
                )
            elif weight not in (0, 1) or isinstance(weight, bool):
                emit("invalid_weight", f"{path}.weight", f"weight must be 0 or 1, found {weight!r}")
        if len(m) > 2 and not _MESSAGE_KEYS.issuperset(m):
            extra = ", ".join(sorted(set(m) - _MESSAGE_KEYS))
            emit("unknown_message_key", path, f"{path} has unknown key(s) {extra}", warning=True)
        calls = m.get("tool_calls")
        legacy = m.get("function_call")
        if calls is not None and calls != []:  # null and [] are how SDK dumps say "no tool calls"
            _check_tool_calls(calls, f"{path}.tool_calls", ex, kind, emit)
        if legacy is not None:
            _check_function_call(legacy, f"{path}.function_call", ex, kind, emit)
        if "name" in m:
            name = m["name"]
            if type(name) is str:
                ex.add(name, f"{path}.name", PROMPT)
            else:
                found = _json_type(name)
                emit("invalid_type", f"{path}.name", f"{path}.name must be a string, found {found}")
        optional = bool(calls) or legacy is not None
        _check_content(m.get("content"), role, f"{path}.content", ex, kind, emit, optional=optional)


def _check_content(
    content: Any,
    role: str,
    path: str,
    ex: Example,
    kind: int,
    emit: Emit,
    *,
    optional: bool = False,
) -> None:
    if type(content) is str:
        if not optional and _is_blank(content):
            emit("empty_content", path, f"{path} is empty")
        ex.add(content, path, kind)
        return
    if content is None:
        if not optional:
            emit(
                "missing_content",
                path,
                f"{path} is missing (only an assistant turn with tool_calls may omit it)",
            )
        return
    if not isinstance(content, list) or not content:
        emit("invalid_content", path, f"{path} must be a string or a non-empty list of parts")
        return
    for j, part in enumerate(content):
        ppath = f"{path}[{j}]"
        ptype = part.get("type") if type(part) is dict else None
        if ptype == "text":
            _text(part.get("text"), f"{ppath}.text", emit)
            if isinstance(part.get("text"), str):
                ex.add(part["text"], f"{ppath}.text", kind)
        elif ptype == "image_url":
            ex.images += 1
            if role != "user":
                emit(
                    "image_not_in_user_turn",
                    ppath,
                    f"images are only allowed in user messages, found one in a {role} message",
                )
            url = (
                part.get("image_url", {}).get("url")
                if isinstance(part.get("image_url"), dict)
                else None
            )
            if type(url) is not str or not _is_image_url(url):
                found = f"{url[:40]!r}" if type(url) is str else _json_type(url)
                emit(
                    "invalid_image",
                    f"{ppath}.image_url.url",
                    f"{ppath}.image_url.url must be an https:// URL or a data:image/... URI, "
                    f"found {found}",
                )
        else:
            emit(
                "unknown_content_part",
                ppath,
                f"{ppath} has unknown part type {ptype!r}; expected text or image_url",
            )


def _check_tool_calls(calls: Any, path: str, ex: Example, kind: int, emit: Emit) -> None:
    """`tool_calls`: a list of `{"type": "function", "function": {"name", "arguments"}}`."""
    ex.tools = True
    if type(calls) is not list:
        found = _json_type(calls)
        emit("invalid_tool_call", path, f"{path} must be a list of tool calls, found {found}")
        return
    for k, call in enumerate(calls):
        fn = call.get("function") if type(call) is dict else None
        if type(fn) is not dict:
            where = f"{path}[{k}]"
            emit("invalid_tool_call", where, f"{where} must be an object with a function object")
            continue
        _check_function(fn, f"{path}[{k}].function", ex, kind, emit)


def _check_function_call(call: Any, path: str, ex: Example, kind: int, emit: Emit) -> None:
    """The legacy `function_call`: one `{"name", "arguments"}` object."""
    ex.tools = True
    if type(call) is not dict:
        found = _json_type(call)
        emit(
            "invalid_tool_call",
            path,
            f"{path} must be an object with name and arguments, found {found}",
        )
        return
    _check_function(call, path, ex, kind, emit)


def _check_function(fn: dict[str, Any], path: str, ex: Example, kind: int, emit: Emit) -> None:
    """A called function: `name` a string, `arguments` a string holding a JSON object."""
    name = fn.get("name")
    if type(name) is str and name:
        ex.add(name, f"{path}.name", kind)
    else:
        found = (
            "empty"
            if name == ""
            else f"found {_json_type(name)}"
            if name is not None
            else "missing"
        )
        emit(
            "invalid_tool_call", f"{path}.name", f"{path}.name must be a non-empty string ({found})"
        )
    where = f"{path}.arguments"
    if "arguments" not in fn:
        emit(
            "invalid_tool_call",
            where,
            f'{where} is missing: give a JSON object in a string, e.g. "{{}}"',
        )
        return
    args = fn["arguments"]
    if type(args) is not str:
        found = _json_type(args)
        emit(
            "invalid_tool_call",
            where,
            f"{where} must be a string holding a JSON object, found a JSON {found} (serialise it with json.dumps)",
        )
        return
    ex.add(args, where, kind)
    try:
        value = orjson.loads(args)
    except orjson.JSONDecodeError as exc:
        emit(
            "invalid_tool_call", where, f"{where} is not valid JSON ({exc.msg}, column {exc.colno})"
        )
        return
    if type(value) is not dict:
        found = _json_type(value)
        emit("invalid_tool_call", where, f"{where} must hold a JSON object, found a JSON {found}")


def _check_tools(record: dict[str, Any], ex: Example, emit: Emit, base: str = "") -> None:
    """`tools` (each `{"type": "function", "function": {"name", ...}}`) or legacy `functions`."""
    key = "tools" if record.get("tools") is not None else "functions"
    tools = record.get(key)
    if tools is None:
        return
    ex.tools = True
    where = base + key
    if type(tools) is not list:
        found = _json_type(tools)
        emit("invalid_tools", where, f"{where} must be a list of tool definitions, found {found}")
        return
    legacy = key == "functions"  # legacy entries are the function definitions themselves
    for k, tool in enumerate(tools):
        path = f"{where}[{k}]"
        fn = tool if legacy else tool.get("function") if type(tool) is dict else None
        if type(fn) is not dict:
            what = "a function definition" if legacy else 'a "function" object'
            emit("invalid_tools", path, f"{path} must be an object with {what} (name, parameters)")
            continue
        fpath = path if legacy else f"{path}.function"
        name = fn.get("name")
        if type(name) is not str or not name:
            found = "empty" if name == "" else _json_type(name)
            emit(
                "invalid_tools",
                f"{fpath}.name",
                f"{fpath}.name must be a non-empty string, found {found}",
            )
        params = fn.get("parameters")
        if params is not None and type(params) is not dict:
            found = _json_type(params)
            emit(
                "invalid_tools",
                f"{fpath}.parameters",
                f"{fpath}.parameters must be a JSON schema object, found {found}",
            )
    ex.add(orjson.dumps(tools).decode(), where, PROMPT)


def _is_image_url(url: str) -> bool:
    head = url[:11].lower()
    if head.startswith("https://"):
        return len(url) > 8
    return head == "data:image/" and len(url) > 11


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return _JSON_TYPES.get(type(value), type(value).__name__)


_JSON_TYPES = {
    dict: "object",
    list: "array",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
}


def _unknown_keys(record: dict[str, Any], allowed: frozenset[str], emit: Emit) -> None:
    if not allowed.issuperset(record):
        extra = ", ".join(sorted(set(record) - allowed))
        emit("unknown_key", None, f"unknown top-level key(s) {extra}", warning=True)


# -- one checker per format -----------------------------------------------------------------------
def _plain_chat(messages: list[Any]) -> Example | None:
    """The `Example` of a list of plain messages, or None when any message is not plain.

    Plain is the usual shape: exactly `{"role", "content"}`, a role of `_PLAIN_ROLES`, and a
    string content that is not blank. Such messages have nothing to report, so they are read
    here without the general path's per-message bookkeeping; any other list (a tool call, a
    weight, a name, a list of parts, a bad value) goes through `_check_messages`, from scratch.
    """
    roles: list[str] = []
    prompt: list[str] = []
    target: list[str] = []
    add_role, add_prompt, add_target = roles.append, prompt.append, target.append
    try:
        for m in messages:
            role = m["role"]  # KeyError or TypeError: not a plain message
            content = m["content"]
            if (
                len(m) != 2
                or type(content) is not str
                or role not in _PLAIN_ROLES  # TypeError for an unhashable role
                or not content
                or content.isspace()
            ):
                return None
            add_role(role)
            if role == "assistant":
                add_target(content)
            else:
                add_prompt(content)
    except (KeyError, TypeError):
        return None
    ex = _new_example(Example)
    ex.groups = [prompt, target, _NONE, _NONE]
    ex.roles = roles
    ex.role_paths = list(range(len(roles)))
    ex.images = 0
    ex.tools = False
    return ex


def check_chat(record: dict[str, Any], emit: Emit) -> Example:
    messages = record.get("messages")
    if len(record) == 1 and type(messages) is list and messages:
        # a record holding plain messages only: no tools, no unknown keys, and nothing to report
        # but a missing assistant turn
        plain = _plain_chat(messages)
        if plain is not None:
            if not plain.groups[TARGET]:
                emit("no_assistant_message", "messages", "no assistant message to learn from")
            return plain
    ex = Example()
    _check_messages(messages, ex, emit)
    # a record holding messages only has neither tools nor unknown keys to check
    if len(record) != 1 or messages is None:
        _check_tools(record, ex, emit)
        _unknown_keys(record, _CHAT_TOP, emit)
    if ex.roles and "assistant" not in ex.roles:
        emit("no_assistant_message", "messages", "no assistant message to learn from")
    elif (
        ex.roles
        and not ex.groups[TARGET]
        and all(
            m.get("weight") == 0
            for m in record["messages"]
            if type(m) is dict and m.get("role") == "assistant"
        )
    ):
        emit(
            "no_trained_message",
            "messages",
            "every assistant message has weight 0, so nothing is trained",
        )
    return ex


def check_rft(record: dict[str, Any], emit: Emit) -> Example:
    ex = Example()
    _check_messages(record.get("messages"), ex, emit, kind_for=lambda role, m: PROMPT)
    _check_tools(record, ex, emit)
    if len(record) == 1 + ("tools" in record):
        emit(
            "no_grader_fields",
            None,
            "no fields besides messages: graders see only {{ item.* }} keys such as reference_answer",
            warning=True,
        )
    return ex


def check_bedrock_claude(record: dict[str, Any], emit: Emit) -> Example:
    ex = Example()
    system = record.get("system")
    if system is not None and _text(system, "system", emit) is not None:
        ex.add(system, "system", PROMPT)
    messages = record.get("messages")
    if isinstance(messages, list):
        for i, m in enumerate(messages):
            if type(m) is dict and "content" in m and not isinstance(m["content"], str):
                emit(
                    "invalid_content",
                    f"messages[{i}].content",
                    "Claude records take plain-string content",
                )
    _check_messages(messages, ex, emit)
    _unknown_keys(record, frozenset({"system", "messages"}), emit)
    return ex


def check_prompt_completion(record: dict[str, Any], emit: Emit) -> Example:
    ex = Example()
    prompt = _text(record.get("prompt"), "prompt", emit)
    completion = _text(record.get("completion"), "completion", emit)
    if prompt is not None:
        ex.add(prompt, "prompt", PROMPT)
    if completion is not None:
        ex.add(completion, "completion", TARGET)
    _unknown_keys(record, frozenset({"prompt", "completion"}), emit)
    return ex


_OUTPUT_NAMES = (
    ("preferred_output", "preferred_completion", CHOSEN),
    ("non_preferred_output", "non_preferred_completion", REJECTED),
)


def check_preference(record: dict[str, Any], emit: Emit) -> Example:
    ex = Example()
    inp = record.get("input")
    if type(inp) is not dict:
        emit("missing_field", "input", "input must be an object with messages")
    else:
        _check_messages(
            inp.get("messages"), ex, emit, base="input.messages", kind_for=lambda role, m: PROMPT
        )
        _check_tools(inp, ex, emit, base="input.")
    outputs = []
    for name, old, kind in _OUTPUT_NAMES:
        key = name if name in record else old if old in record else None
        if key is None:
            emit("missing_field", name, f"{name} is missing")
            continue
        if key == old:
            emit(
                "legacy_field_name",
                old,
                f"{old} is the older name of {name}; fh.convert writes the current one",
                warning=True,
            )
        value = record[key]
        if not isinstance(value, list) or not value:
            emit("invalid_output", key, f"{key} must be a non-empty list of assistant messages")
            continue
        before = len(ex.roles)
        _check_messages(value, ex, emit, base=key, kind_for=lambda role, m, kind=kind: kind)
        roles = ex.roles[before:]
        del ex.roles[before:], ex.role_paths[before:]
        if "assistant" not in roles or not set(roles) <= {"assistant", "tool"}:
            emit(
                "invalid_output",
                key,
                f"{key} must hold assistant (and tool) messages only, with at least one assistant",
            )
        outputs.append(value)
    if len(outputs) == 2 and outputs[0] == outputs[1]:
        emit(
            "identical_outputs",
            None,
            "preferred and non-preferred outputs are identical",
            warning=True,
        )
    return ex


def _turns(
    items: list[Any], base: str, roles: tuple[str, str], what: str, ex: Example, emit: Emit
) -> Iterator[tuple[str, dict[str, Any], Any]]:
    """Yield `(path, turn, role)` for each object in a Gemini or Bedrock turn list, recording known roles."""
    for i, turn in enumerate(items):
        path = f"{base}[{i}]"
        if type(turn) is not dict:
            emit("invalid_message", path, f"{path} must be an object with role and {what}")
            continue
        role = turn.get("role")
        if role not in roles:
            emit(
                "unknown_role",
                f"{path}.role",
                f"role must be {roles[0]!r} or {roles[1]!r}, found {role!r}",
            )
        else:
            ex.roles.append(role)
            ex.role_paths.append(path)
        yield path, turn, role


def _check_gemini_contents(
    contents: Any, ex: Example, emit: Emit, base: str = "contents", kind: int | None = None
) -> None:
    if not isinstance(contents, list) or not contents:
        emit("missing_messages", base, f"{base} must be a non-empty list")
        return
    for path, turn, role in _turns(contents, base, ("user", "model"), "parts", ex, emit):
        _check_parts(
            turn.get("parts"),
            path,
            ex,
            emit,
            kind if kind is not None else (TARGET if role == "model" else PROMPT),
            role,
        )


def _check_parts(parts: Any, path: str, ex: Example, emit: Emit, kind: int, role: Any) -> None:
    if not isinstance(parts, list) or not parts:
        emit("missing_content", f"{path}.parts", f"{path}.parts must be a non-empty list")
        return
    _check_items(
        parts,
        f"{path}.parts",
        ex,
        emit,
        kind,
        role,
        media=("fileData", "file_data", "inlineData"),
        media_ok=role != "model",
        shape="have text or fileData",
    )


def _check_items(
    items: list[Any],
    base: str,
    ex: Example,
    emit: Emit,
    kind: int,
    role: Any,
    *,
    media: tuple[str, ...],
    media_ok: bool,
    shape: str,
) -> None:
    """Gemini parts and Bedrock content blocks: texts are counted, media is counted and refused
    outside user turns, anything else is reported."""
    for j, item in enumerate(items):
        path = f"{base}[{j}]"
        if type(item) is not dict:
            emit("invalid_content", path, f"{path} must be an object")
        elif "text" in item:
            text = _text(item["text"], f"{path}.text", emit)
            if text is not None:
                ex.add(text, f"{path}.text", kind)
        elif any(key in item for key in media):
            ex.images += 1
            if not media_ok:
                emit(
                    "image_not_in_user_turn",
                    path,
                    f"media is only allowed in user turns, found one in {role}",
                )
        else:
            emit("unknown_content_part", path, f"{path} must {shape}")


def check_gemini(record: dict[str, Any], emit: Emit) -> Example:
    ex = Example()
    system = record.get("systemInstruction", record.get("system_instruction"))
    if system is not None:
        if type(system) is dict:
            _check_parts(system.get("parts"), "systemInstruction", ex, emit, PROMPT, "system")
        else:
            emit(
                "invalid_content",
                "systemInstruction",
                "systemInstruction must be an object with parts",
            )
    _check_gemini_contents(record.get("contents"), ex, emit)
    if ex.roles and "model" not in ex.roles:
        emit("no_assistant_message", "contents", "no model turn to learn from")
    _unknown_keys(
        record, frozenset({"contents", "systemInstruction", "system_instruction", "tools"}), emit
    )
    return ex


def check_gemini_preference(record: dict[str, Any], emit: Emit) -> Example:
    ex = Example()
    system = record.get("systemInstruction", record.get("system_instruction"))
    if type(system) is dict:
        _check_parts(system.get("parts"), "system_instruction", ex, emit, PROMPT, "system")
    _check_gemini_contents(record.get("contents"), ex, emit, kind=PROMPT)
    completions = record.get("completions")
    if not isinstance(completions, list) or len(completions) != 2:
        emit(
            "invalid_completions",
            "completions",
            "completions must hold exactly two scored completions",
        )
        return ex
    scores = []
    for i, c in enumerate(completions):
        path = f"completions[{i}]"
        score = c.get("score") if type(c) is dict else None
        scores.append(score)
        comp = c.get("completion") if type(c) is dict else None
        if type(comp) is not dict:
            emit("missing_field", f"{path}.completion", f"{path}.completion is missing")
            continue
        _check_parts(
            comp.get("parts"),
            f"{path}.completion",
            ex,
            emit,
            CHOSEN if score == 1 else REJECTED,
            comp.get("role"),
        )
    if sorted(s for s in scores if isinstance(s, int | float)) != [0, 1]:
        emit(
            "invalid_scores",
            "completions",
            f"scores must be one 1 (preferred) and one 0, found {scores}",
        )
    return ex


def check_rlhf_prompt(record: dict[str, Any], emit: Emit) -> Example:
    ex = Example()
    text = _text(record.get("input_text"), "input_text", emit)
    if text is not None:
        ex.add(text, "input_text", PROMPT)
    return ex


def check_rlhf_preference(record: dict[str, Any], emit: Emit) -> Example:
    ex = check_rlhf_prompt(record, emit)
    for name, kind in (("candidate_0", CHOSEN), ("candidate_1", REJECTED)):
        text = _text(record.get(name), name, emit)
        if text is not None:
            ex.add(text, name, kind)
    choice = record.get("choice")
    if choice not in (0, 1) or isinstance(choice, bool):
        emit(
            "invalid_choice",
            "choice",
            f"choice must be 0 or 1 (the preferred candidate), found {choice!r}",
        )
    elif choice == 1:  # the preferred candidate is the one counted as chosen
        ex.groups[CHOSEN], ex.groups[REJECTED] = ex.groups[REJECTED], ex.groups[CHOSEN]
    return ex


def check_bedrock_conversation(record: dict[str, Any], emit: Emit) -> Example:
    ex = Example()
    version = record.get("schemaVersion")
    if version is None:
        emit(
            "missing_field",
            "schemaVersion",
            'schemaVersion is missing (use "bedrock-conversation-2024")',
            warning=True,
        )
    elif version != "bedrock-conversation-2024":
        emit(
            "schema_version",
            "schemaVersion",
            f'schemaVersion is {version!r}; Bedrock documents "bedrock-conversation-2024"',
            warning=True,
        )
    system = record.get("system")
    if system is not None:
        if not isinstance(system, list):
            emit("invalid_content", "system", "system must be a list of {text} blocks")
        else:
            _check_blocks(system, "system", ex, emit, PROMPT, "system")
    messages = record.get("messages")
    if not isinstance(messages, list) or not messages:
        emit("missing_messages", "messages", "messages must be a non-empty list")
        return ex
    for path, m, role in _turns(messages, "messages", ("user", "assistant"), "content", ex, emit):
        content = m.get("content")
        if not isinstance(content, list) or not content:
            emit(
                "invalid_content",
                f"{path}.content",
                f"{path}.content must be a non-empty list of content blocks",
            )
            continue
        _check_blocks(
            content, f"{path}.content", ex, emit, TARGET if role == "assistant" else PROMPT, role
        )
    _unknown_keys(record, frozenset({"schemaVersion", "system", "messages"}), emit)
    return ex


def _check_blocks(
    blocks: list[Any], path: str, ex: Example, emit: Emit, kind: int, role: Any
) -> None:
    _check_items(
        blocks,
        path,
        ex,
        emit,
        kind,
        role,
        media=("image", "video", "document"),
        media_ok=role == "user",
        shape="be a text, image or video block",
    )


def check_continued_pretraining(record: dict[str, Any], emit: Emit) -> Example:
    ex = Example()
    text = _text(record.get("input"), "input", emit)
    if text is not None:
        ex.add(text, "input", TARGET)
    _unknown_keys(record, frozenset({"input"}), emit)
    return ex


def check_instruction(record: dict[str, Any], emit: Emit) -> Example:
    ex = Example()
    for name, kind in (("instruction", PROMPT), ("input", PROMPT)):
        value = record.get(name)
        if isinstance(value, str) and value:
            ex.add(value, name, kind)
    out_key = "output" if "output" in record else "response"
    out = _text(record.get(out_key), out_key, emit)
    if out is not None:
        ex.add(out, out_key, TARGET)
    return ex


def check_prompts(record: dict[str, Any], emit: Emit) -> Example:
    """Evaluation prompts: `input` (ELYZA-tasks style, with `task_id`) or `prompt`."""
    ex = Example()
    key = "input" if "input" in record else "prompt"
    text = _text(record.get(key), key, emit)
    if text is not None:
        ex.add(text, key, PROMPT)
    return ex


CHECKERS: dict[DataFormat, Callable[[dict[str, Any], Emit], Example]] = {
    DataFormat.CHAT: check_chat,
    DataFormat.RFT: check_rft,
    DataFormat.BEDROCK_CLAUDE: check_bedrock_claude,
    DataFormat.PROMPT_COMPLETION: check_prompt_completion,
    DataFormat.PREFERENCE: check_preference,
    DataFormat.GEMINI: check_gemini,
    DataFormat.GEMINI_PREFERENCE: check_gemini_preference,
    DataFormat.RLHF_PROMPT: check_rlhf_prompt,
    DataFormat.RLHF_PREFERENCE: check_rlhf_preference,
    DataFormat.BEDROCK_CONVERSATION: check_bedrock_conversation,
    DataFormat.CONTINUED_PRETRAINING: check_continued_pretraining,
    DataFormat.INSTRUCTION: check_instruction,
    DataFormat.PROMPTS: check_prompts,
}
