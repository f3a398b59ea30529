import json

import pytest

from agemem_gym.protocol import (
    ToolCall,
    format_answer,
    format_tool_call,
    parse_response,
    sanitize_action,
    unusable_action_message,
)


def test_answer_and_think():
    r = parse_response("<think>easy</think><answer> Paris </answer>")
    assert (r.kind, r.think, r.answer, r.error) == ("answer", "easy", "Paris", None)


def test_tool_call_array_and_single_object():
    body = [{"name": "Add_memory", "arguments": {"content": "a"}},
            {"name": "Retrieve_memory", "arguments": {"query": "b"}}]
    r = parse_response(f"<think></think><tool_call>{json.dumps(body)}</tool_call>")
    assert r.tool_calls == (ToolCall("Add_memory", {"content": "a"}), ToolCall("Retrieve_memory", {"query": "b"}))
    single = parse_response('<tool_call>{"name": "Filter_context", "arguments": {"criteria": "x"}}</tool_call>')
    assert single.tool_calls == (ToolCall("Filter_context", {"criteria": "x"}),)


def test_arguments_as_json_string_are_accepted():
    r = parse_response('<tool_call>[{"name": "Add_memory", "arguments": "{\\"content\\": \\"a\\"}"}]</tool_call>')
    assert r.tool_calls == (ToolCall("Add_memory", {"content": "a"}),)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the response is empty; expected <think>...</think> followed by exactly one of "
             '<tool_call>[{"name": ..., "arguments": {...}}]</tool_call> or <answer>...</answer>'),
        ("<answer>x", "the <answer> tag is not closed: add </answer>"),
        ("x</answer>", "the <answer> tag is not closed: remove the stray </answer>"),
        ("<answer>a</answer><tool_call>[]</tool_call>",
         "the response has both <tool_call> and <answer>; give exactly one of them"),
        ("<answer>a</answer><answer>b</answer>",
         "the response has 2 <answer> blocks; give one (a <tool_call> holds a JSON array of calls)"),
        ("<tool_call>[]</tool_call>", "the <tool_call> block must hold a non-empty JSON array of calls"),
        ('<tool_call>[{"arguments": {}}]</tool_call>', 'tool call #1 must be an object with a string "name"'),
        ('<tool_call>[{"name": "A", "arguments": [1]}]</tool_call>', 'tool call #1: "arguments" must be an object'),
    ],
)
def test_malformed_responses_get_exact_messages(text, message):
    r = parse_response(text)
    assert r.kind == "invalid"
    assert r.error == message


def test_bad_json_names_the_position():
    r = parse_response("<tool_call>[{'name': 'x'}]</tool_call>")
    assert r.error.startswith("the <tool_call> block is not valid JSON (line 1, column 3:")


def test_no_block_and_non_text():
    assert parse_response("<think>hmm</think>").error.startswith("the response has no <tool_call> or <answer>")
    assert parse_response(None).error == "a response must be text, got NoneType"


def test_oversize_response_is_rejected_with_its_size():
    r = parse_response("x" * 1_048_576)
    assert r.error == "the response is 1,048,576 characters; the limit is 32,768"


def test_formatters_round_trip():
    assert parse_response(format_answer("42")).answer == "42"
    call = parse_response(format_tool_call("Delete_memory", memory_id="mem_000001", confirmation=True))
    assert call.tool_calls == (ToolCall("Delete_memory", {"memory_id": "mem_000001", "confirmation": True}),)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<tool_call>" + "[" * 2000 + "</tool_call>",
         "the <tool_call> block cannot be used: the JSON nests 2000 levels deep; the limit is 16"),
        ('<tool_call>[{"name": "Retrieve_memory", "arguments": {"query": "a", "top_k": '
         + "9" * 5000 + "}}]</tool_call>",
         "the <tool_call> block cannot be used: an integer has 5,000 digits; the limit is 100"),
        ('<tool_call>[{"name": "Add_memory", "arguments": {"content": "a", "metadata": '
         '{"x": NaN}}}]</tool_call>',
         "the <tool_call> block cannot be used: NaN is not a JSON value; write a finite number "
         "or a string"),
        ('<tool_call>[{"name": "Add_memory", "arguments": {"content": "a", "metadata": '
         '{"x": 1e999}}}]</tool_call>',
         "the <tool_call> block cannot be used: the number 1e999 is out of range"),
        ('<tool_call>[{"name": "Add_memory", "arguments": {"content": "a", "metadata": '
         '{"x": "\\ud800"}}}]</tool_call>',
         "tool call #1 holds an unpaired surrogate (a lone \\ud800-\\udfff escape) in "
         "arguments.metadata.x; write valid Unicode text"),
        ('<tool_call>[{"name": "Add_memory", "arguments": {"content": "a", "memory_type": '
         '"\\udfff"}}]</tool_call>',
         "tool call #1 holds an unpaired surrogate (a lone \\ud800-\\udfff escape) in "
         "arguments.memory_type; write valid Unicode text"),
        ('<tool_call>[{"name": "Add_memory", "arguments": "{\\"content\\": ' + "[" * 40
         + "]" * 40 + '}"}]</tool_call>',
         'tool call #1: "arguments" cannot be used: the JSON nests 41 levels deep; the limit is 16'),
        ("<answer>go \ud800 north</answer>",
         "the response holds an unpaired surrogate (U+D800) at character 11; write valid "
         "Unicode text"),
    ],
)
def test_model_written_input_past_the_decoders_limits_is_a_format_error(text, message):
    assert parse_response(text).error == message


def test_brackets_inside_strings_do_not_count_as_nesting_and_stay_linear():
    import time

    deep_text = json.dumps([{"name": "Add_memory", "arguments": {"content": "[" * 5000}}])
    assert parse_response(f"<tool_call>{deep_text}</tool_call>").tool_calls[0].arguments == {
        "content": "[" * 5000}
    start = time.perf_counter()  # an unclosed string of escaped quotes once took seconds
    parse_response("<tool_call>" + '"' + '\\"' * 10_000 + "</tool_call>")
    assert time.perf_counter() - start < 1.0


def test_valid_paired_surrogates_and_big_but_sane_numbers_pass():
    r = parse_response('<tool_call>[{"name": "Add_memory", "arguments": {"content": '
                       '"\\ud83d\\ude00 ok", "metadata": {"n": 12345678901234567890}}}]</tool_call>')
    assert r.tool_calls[0].arguments == {"content": "\U0001F600 ok",
                                         "metadata": {"n": 12345678901234567890}}


@pytest.mark.parametrize(
    ("text", "expected"),
    [("go to kitchen", "go to kitchen"), ("  open\tdoor\n", "open door"),
     ("take \ud800key", "take key"), ("move\x00 ahead\x7f", "move ahead"), ("", ""),
     ("\ud800\udfff", None), ("\x00\x01", None), ("x" * 1001, None)],
)
def test_sanitize_action_gives_an_engine_only_text_it_can_take(text, expected):
    assert sanitize_action(text) == expected
    if expected is None:
        assert "nothing was done" in unusable_action_message(text)
