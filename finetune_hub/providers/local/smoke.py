"""A smoke test after a local run: does the tuned model stop where a reply ends?

A LoRA-tuned model that never stops generating is a common dead end: the chat template ends an
assistant turn with one token (`<|im_end|>`, `<|eot_id|>`, ...) while generation stops on
another (the tokenizer's or `generation_config`'s end-of-sequence), or the end-of-turn token was
never among the trained tokens. Right after training, with the model still loaded, this checks:

1. the template's end-of-turn marker is one token, and generation stops on it
   (`generation_config.eos_token_id`);
2. the trained spans of the training examples include it (the model learnt to emit it);
3. a few answers to held-out prompts (the validation file's, else the training file's, said so)
   under a length cap: any that runs to the cap without stopping is reported.

The report goes to `smoke_test.json` in the run folder and to the job (`model.smoke_test`). It
never fails the run: a smoke test that cannot run says why in `error`. Set
`FINETUNE_HUB_SMOKE_TEST=0` to skip it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from finetune_hub.issues import Issue, Severity

if TYPE_CHECKING:
    from finetune_hub.providers.local.runner import RunDir

SMOKE_FILE = "smoke_test.json"
SKIP_ENV = "FINETUNE_HUB_SMOKE_TEST"
PROMPTS = 3
MAX_NEW_TOKENS = 64
_SENTINEL = "fh-smoke-sentinel-7f3a"


class EndOfTurn(BaseModel):
    """What ends an assistant turn in the template, and whether generation stops there."""

    marker: str = ""  # the text the template puts right after an assistant reply
    token_id: int | None = None
    single: bool = False  # the marker is one token of the tokenizer
    stop_ids: list[int] = Field(default_factory=list)  # what generation stops on
    stops: bool = False
    trained: bool | None = None  # None: no training example to look at


class Answer(BaseModel):
    prompt: str
    reply: str
    new_tokens: int
    stopped: bool


class SmokeReport(BaseModel):
    """The smoke test of one run; `ok` when nothing found would keep replies from stopping."""

    ok: bool = True
    end_of_turn: EndOfTurn = Field(default_factory=EndOfTurn)
    answers: list[Answer] = Field(default_factory=list)
    held_out: bool = False  # the prompts came from the validation file
    max_new_tokens: int = MAX_NEW_TOKENS
    issues: list[Issue] = Field(default_factory=list)
    error: str | None = None


# -- the checks ---------------------------------------------------------------------------------------
def stop_ids(model: Any, tokenizer: Any) -> list[int]:
    """The token ids generation stops on by default (generation_config, else config, else the
    tokenizer's eos)."""
    for source in (getattr(model, "generation_config", None), getattr(model, "config", None)):
        value = getattr(source, "eos_token_id", None)
        if value is not None:
            return [int(v) for v in (value if isinstance(value, list | tuple) else [value])]
    eos = getattr(tokenizer, "eos_token_id", None)
    return [] if eos is None else [int(eos)]


def end_of_turn(tokenizer: Any, stops: list[int]) -> tuple[EndOfTurn, list[Issue]]:
    """The template's end-of-turn marker, its token, and whether generation stops on it."""
    messages = [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": _SENTINEL},
    ]
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    tail = text[text.rfind(_SENTINEL) + len(_SENTINEL) :].lstrip()
    marker = tail.split()[0] if tail.split() else ""
    eot = EndOfTurn(marker=marker, stop_ids=stops)
    if not marker:
        return eot, [
            _issue(
                "template_has_no_end_of_turn",
                "the chat template puts nothing after an assistant reply, so nothing marks where "
                "a reply ends and generation stops only at its length cap. Fix: a chat template "
                "that closes each turn with the tokenizer's end-of-sequence token",
            )
        ]
    ids = tokenizer(marker, add_special_tokens=False)["input_ids"]
    eot.token_id = int(ids[0]) if ids else None
    eot.single = len(ids) == 1
    eot.stops = eot.single and eot.token_id in stops
    names = ", ".join(f"{tokenizer.convert_ids_to_tokens(i)!r} (id {i})" for i in stops) or "none"
    if not eot.single:
        return eot, [
            _issue(
                "end_of_turn_not_one_token",
                f"the chat template ends a reply with {marker!r}, which the tokenizer splits into "
                f"{len(ids)} tokens, so generation cannot stop on it. Fix: add {marker!r} as a "
                "special token (tokenizer.add_special_tokens) and train again",
            )
        ]
    if not eot.stops:
        return eot, [
            _issue(
                "end_of_turn_not_a_stop_token",
                f"the chat template ends a reply with {marker!r} (id {eot.token_id}) but "
                f"generation stops on {names}: replies run on past the end of the turn. Fix: "
                f"make generation stop on it (generation_config.eos_token_id = [{eot.token_id}"
                f"{''.join(f', {i}' for i in stops)}] in the base model's folder, or a tokenizer "
                f"whose eos_token is {marker!r})",
            )
        ]
    return eot, []


def trained_on_end(tokenizer: Any, conversations: list[Any], eot: EndOfTurn) -> list[Issue]:
    """Whether the trained spans of the first examples include the end-of-turn token."""
    from finetune_hub.providers.local.data import IGNORE, encode_sft

    if eot.token_id is None:
        return []
    examples = [encode_sft(tokenizer, c, 4096) for c in conversations[:8]]
    labelled = [e for e in examples if e is not None]
    if not labelled:
        return []
    eot.trained = any(eot.token_id in [t for t in e.labels if t != IGNORE] for e in labelled)
    if eot.trained:
        return []
    return [
        _issue(
            "end_of_turn_not_trained",
            f"the trained tokens of the examples never include {eot.marker!r}, so the model "
            "never learnt to end a reply: its answers will run on. Fix: train on the assistant "
            "turn's end-of-turn token too (a template whose marker follows the reply)",
        )
    ]


def prompts_of(conversations: list[Any], n: int) -> list[list[dict[str, str]]]:
    """The first `n` conversations up to (not including) their last assistant turn."""
    out = []
    for conv in conversations:
        turns = list(conv.turns)
        while turns and turns[-1].role == "assistant":
            turns.pop()
        if not turns:
            continue
        msgs = [{"role": "system", "content": conv.system}] if conv.system is not None else []
        out.append(msgs + [{"role": t.role, "content": t.text} for t in turns])
        if len(out) == n:
            break
    return out


def generate_answers(
    model: Any, tokenizer: Any, prompts: list[list[dict[str, str]]], stops: list[int], cap: int
) -> list[Answer]:
    """Greedy answers under `cap` new tokens, with the model's own stopping rule."""
    import torch

    model = getattr(model, "module", model)
    was_training = model.training
    model.eval()
    answers = []
    try:
        for messages in prompts:
            text = tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
            enc = tokenizer(text, add_special_tokens=False, return_tensors="pt")
            device = next(model.parameters()).device
            enc = {k: v.to(device) for k, v in enc.items()}
            with torch.no_grad():
                out = model.generate(
                    **enc,
                    max_new_tokens=cap,
                    do_sample=False,
                    use_cache=True,
                    pad_token_id=tokenizer.pad_token_id
                    if tokenizer.pad_token_id is not None
                    else (stops[0] if stops else 0),
                )
            new = out[0, enc["input_ids"].shape[1] :].tolist()
            stopped = any(t in stops for t in new)
            reply = tokenizer.decode(new, skip_special_tokens=True)
            answers.append(
                Answer(
                    prompt=messages[-1]["content"],
                    reply=reply,
                    new_tokens=len(new),
                    stopped=stopped,
                )
            )
    finally:
        model.train(was_training)
    return answers


def smoke_test(
    model: Any,
    tokenizer: Any,
    training: list[Any],
    held_out: list[Any] | None = None,
    *,
    prompts: int = PROMPTS,
    max_new_tokens: int = MAX_NEW_TOKENS,
) -> SmokeReport:
    """The three checks of the module doc on a loaded model and tokenizer; `training` and
    `held_out` are conversations (`finetune_hub.data.neutral.Conversation`)."""
    stops = stop_ids(model, tokenizer)
    eot, issues = end_of_turn(tokenizer, stops)
    issues += trained_on_end(tokenizer, training, eot)
    chosen = prompts_of(held_out or [], prompts) or prompts_of(training, prompts)
    report = SmokeReport(
        end_of_turn=eot, held_out=bool(held_out), max_new_tokens=max_new_tokens, issues=issues
    )
    report.answers = generate_answers(model, tokenizer, chosen, stops, max_new_tokens)
    running = [a for a in report.answers if not a.stopped and a.new_tokens >= max_new_tokens]
    if running:
        source = "held-out" if report.held_out else "training (no validation file)"
        report.issues.append(
            _issue(
                "answers_never_stop",
                f"{len(running)} of {len(report.answers)} answers to {source} prompts ran to the "
                f"{max_new_tokens}-token cap without stopping (first: {running[0].reply[:80]!r})",
                warn=not issues,  # an error when the end-of-turn checks already explain it
            )
        )
    report.ok = not any(i.is_error for i in report.issues)
    return report


# -- the run folder -----------------------------------------------------------------------------------
def smoke_test_run(run: RunDir, trainer: Any) -> dict[str, Any] | None:
    """Run the smoke test on a finished `Trainer` (model and tokenizer still loaded), write
    `smoke_test.json` into the run folder and return the report as a dict (None when skipped).
    Never raises: a failure is the report's `error`."""
    from finetune_hub.providers.local.data import read_conversations

    if os.environ.get(SKIP_ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    cfg = trainer.cfg
    try:
        if cfg.method != "sft":
            report = SmokeReport(error=f"no smoke test for method {cfg.method!r} (sft only)")
        else:
            training = read_conversations(cfg.training_file, cfg.format)
            held = (
                read_conversations(cfg.validation_file, cfg.format) if cfg.validation_file else []
            )
            report = smoke_test(trainer.model, trainer.tokenizer, training, held)
    except Exception as exc:  # a report, never a failed run
        report = SmokeReport(
            ok=True, error=f"the smoke test could not run: {type(exc).__name__}: {exc}"
        )
    data = report.model_dump(mode="json")
    from finetune_hub.providers.local.runner import write_json_atomic

    write_json_atomic(run.path / SMOKE_FILE, data)
    level = "info" if report.ok else "warning"
    found = "; ".join(i.message for i in report.issues) or "replies stop where a turn ends"
    run.add_event(f"smoke test: {found}", level=level, type="smoke_test", data={"ok": report.ok})
    return data


def _issue(code: str, message: str, *, warn: bool = False) -> Issue:
    severity = Severity.WARNING if warn else Severity.ERROR
    return Issue(code=code, field="base_model", message=message, severity=severity)
