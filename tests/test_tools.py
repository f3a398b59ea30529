import pytest

from agemem_gym.memory import Context, ExtractiveSummarizer, LongTermMemory, make_encoder
from agemem_gym.protocol import ToolCall
from agemem_gym.tools import ALL_TOOLS, TOOL_SPECS, ToolBox, tool_schemas


@pytest.fixture
def box():
    encoder = make_encoder("hashing")
    ltm = LongTermMemory(encoder, namespace="t")
    context = Context()
    context.append("system", "rules", "system")
    yield ToolBox(ltm, context, encoder, ExtractiveSummarizer())
    ltm.close()


def call(box, name, **arguments):
    return box.run(ToolCall(name, arguments))


def test_schemas_have_the_papers_names_and_required_arguments():
    assert ALL_TOOLS == ("Add_memory", "Update_memory", "Delete_memory",
                         "Retrieve_memory", "Summary_context", "Filter_context")
    required = {s["function"]["name"]: s["function"]["parameters"]["required"] for s in tool_schemas()}
    assert required == {
        "Add_memory": ["content"], "Update_memory": ["memory_id", "content"],
        "Delete_memory": ["memory_id", "confirmation"], "Retrieve_memory": ["query"],
        "Summary_context": ["span"], "Filter_context": ["criteria"],
    }
    assert [p.name for p in TOOL_SPECS["Retrieve_memory"].params] == ["query", "top_k", "metadata_filter"]


def test_add_update_delete_cycle(box):
    added = call(box, "Add_memory", content="The user lives in Lisbon.", metadata={"key": "city"})
    memory_id = added.data["id"]
    assert added.ok and added.text == f"Stored {memory_id}." and memory_id.startswith("mem_")
    updated = call(box, "Update_memory", memory_id=memory_id, content="The user lives in Porto.")
    assert updated.ok and updated.data["old"] == "The user lives in Lisbon."
    assert box.ltm.get(memory_id).content == "The user lives in Porto."
    assert box.ltm.get(memory_id).metadata["key"] == "city"
    deleted = call(box, "Delete_memory", memory_id=memory_id, confirmed=True)  # the paper's alias
    assert deleted.ok and len(box.ltm) == 0


def test_delete_needs_confirmation_and_unknown_ids_are_reported(box):
    memory_id = call(box, "Add_memory", content="x y z").data["id"]
    refused = call(box, "Delete_memory", memory_id=memory_id, confirmation=False)
    assert not refused.ok
    assert refused.text == f"Delete_memory failed: confirmation must be true to delete {memory_id}; nothing was deleted"
    assert len(box.ltm) == 1
    missing = call(box, "Update_memory", memory_id="mem_ffffff", content="c")
    assert missing.text == f"Update_memory failed: no memory with id 'mem_ffffff' (existing ids: {memory_id})"


@pytest.mark.parametrize(
    ("name", "arguments", "message"),
    [
        ("Add_memory", {}, "Add_memory failed: Add_memory is missing the required argument 'content' (string)"),
        ("Add_memory", {"content": 5}, "Add_memory failed: Add_memory argument 'content' must be a string, got int 5"),
        ("Add_memory", {"content": "  "}, "Add_memory failed: Add_memory argument 'content' is empty"),
        ("Add_memory", {"content": "a", "tags": []},
         "Add_memory failed: Add_memory got unexpected argument 'tags'; its arguments are content, metadata, memory_type"),
        ("Retrieve_memory", {"query": "a", "top_k": True},
         "Retrieve_memory failed: Retrieve_memory argument 'top_k' must be a integer, got bool True"),
        ("Retrieve_memory", {"query": "a", "top_k": 0}, "Retrieve_memory failed: top_k must be between 1 and 20, got 0"),
        ("Summary_context", {"span": "most"},
         'Summary_context failed: span must be "all" or a positive number of messages like "4", got \'most\''),
        ("Delete_memory", {"memory_id": "m", "confirmation": "yes"},
         "Delete_memory failed: Delete_memory argument 'confirmation' must be a boolean, got str 'yes'"),
    ],
)
def test_argument_errors_are_exact(box, name, arguments, message):
    result = call(box, name, **arguments)
    assert not result.ok
    assert result.text == message


def test_oversize_content_and_unknown_tool(box):
    result = call(box, "Add_memory", content="x" * 1_000_000)
    assert result.text == "Add_memory failed: Add_memory argument 'content' is 1,000,000 characters; the limit is 4,000"
    unknown = call(box, "Forget_everything")
    assert unknown.text.startswith("unknown tool 'Forget_everything'; the tools are Add_memory, ")


def test_disabled_tool_is_refused(box):
    box.enabled = ("Add_memory",)
    result = call(box, "Filter_context", criteria="x")
    assert result.text == "Filter_context is not available here; the tools are Add_memory"


def test_retrieve_returns_ids_best_first_and_honours_filters(box):
    for text, topic in [("The user's dog is named Mochi.", "pets"), ("The user lives in Osaka.", "home"),
                        ("The user's cat is named Tofu.", "pets")]:
        call(box, "Add_memory", content=text, metadata={"topic": topic})
    found = call(box, "Retrieve_memory", query="what is the name of the user's dog", top_k=2)
    assert found.data["contents"][0] == "The user's dog is named Mochi."
    assert found.text.startswith("Found 2 memories:\n[mem_")
    only_home = call(box, "Retrieve_memory", query="dog", top_k=3, metadata_filter={"topic": "home"})
    assert only_home.data["contents"] == ["The user lives in Osaka."]


def test_filter_removes_only_similar_messages_at_theta(box):
    box.context.append("user", "My neighbour's dog barks all night long.", "distractor")
    keep = box.context.append("user", "The meeting with Dana is on March 3 in Porto.", "fact")
    result = call(box, "Filter_context", criteria="neighbour's dog barks all night")
    assert result.ok and result.data["removed"] == ["m2"]
    assert [m.id for m in box.context] == ["m1", keep.id]
    none = call(box, "Filter_context", criteria="quantum chromodynamics")
    assert none.data["removed"] == [] and none.text.startswith("No message reached similarity 0.6")


def test_summary_spans(box):
    for i in range(4):
        box.context.append("user", f"Fact {i}: the code is {1000 + i}. Filler words here.", "fact")
    last_two = call(box, "Summary_context", span="2")
    assert last_two.ok and last_two.data["removed"] == ["m4", "m5"]
    kinds = [m.kind for m in box.context]
    assert kinds == ["system", "fact", "fact", "summary"]
    everything = call(box, "Summary_context", span="full")  # alias of "all"
    assert [m.kind for m in box.context] == ["system", "summary"]
    assert "1000" in box.context.text() and "1003" in box.context.text()
    assert everything.data["removed"] == ["m2", "m3", last_two.data["summary_id"]]
    numeric = call(box, "Summary_context", span=1)  # a number is accepted as a count
    assert numeric.ok


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"content": "a", "metadata": {"": 1}},
         "Add_memory failed: Add_memory argument 'metadata': a metadata key is empty; use a word "
         'such as "topic"'),
        ({"content": "a", "metadata": {"$and": 1}},
         "Add_memory failed: Add_memory argument 'metadata': the metadata key '$and' is reserved "
         "(keys may not start with $, #, chroma:); rename it"),
        ({"content": "a", "metadata": {"chroma:document": "x"}},
         "Add_memory failed: Add_memory argument 'metadata': the metadata key 'chroma:document' "
         "is reserved (keys may not start with $, #, chroma:); rename it"),
        ({"content": "a", "metadata": {"topic": "\ud800"}},
         "Add_memory failed: Add_memory argument 'metadata' holds an unpaired surrogate in "
         "metadata.topic; write valid Unicode text"),
        ({"content": "a", "memory_type": "\ud800"},
         "Add_memory failed: Add_memory argument 'memory_type' holds an unpaired surrogate; "
         "write valid Unicode text"),
        ({"content": "a", "metadata": {"blob": "x" * 5000}},
         "Add_memory failed: Add_memory argument 'metadata' is 5,012 characters as JSON; the "
         "limit is 4,000"),
    ],
)
def test_metadata_the_store_cannot_take_is_refused_with_a_reason(box, arguments, message):
    result = call(box, "Add_memory", **arguments)
    assert (result.ok, result.text) == (False, message)
    assert len(box.ltm) == 0


@pytest.mark.parametrize(
    ("metadata_filter", "message"),
    [
        ({"$and": 1}, "metadata_filter.$and must be a non-empty list of filters, got 1"),
        ({"": 1}, 'a metadata key is empty; use a word such as "topic"'),
        ({"topic": {"$foo": 1}}, "metadata_filter.topic: unknown operator '$foo'; use one of "
         "$eq, $ne, $gt, $gte, $lt, $lte, $in, $nin"),
        ({"year": {"$gt": "x"}}, "metadata_filter.year: $gt needs a number, got 'x'"),
        ({"topic": {"$in": []}}, "metadata_filter.topic: $in needs a non-empty list of values of "
         "one type, got []"),
        ({"topic": {"$eq": 1, "$ne": 2}}, "metadata_filter.topic must have exactly one operator, "
         "got {'$eq': 1, '$ne': 2}"),
    ],
)
def test_bad_filters_are_refused_even_on_an_empty_memory(box, metadata_filter, message):
    result = call(box, "Retrieve_memory", query="x", metadata_filter=metadata_filter)
    assert (result.ok, result.text) == (False, f"Retrieve_memory failed: {message}")


def test_filter_operators_and_json_valued_metadata_work(box):
    call(box, "Add_memory", content="Trip to Kyoto.", metadata={"year": 2019, "tags": ["travel"]})
    call(box, "Add_memory", content="Trip to Lima.", metadata={"year": 2023, "tags": ["travel"]})
    recent = call(box, "Retrieve_memory", query="trip", metadata_filter={"year": {"$gte": 2020}})
    assert recent.data["contents"] == ["Trip to Lima."]
    either = call(box, "Retrieve_memory", query="trip",
                  metadata_filter={"$or": [{"year": 2019}, {"year": {"$in": [2023]}}]})
    assert sorted(either.data["contents"]) == ["Trip to Kyoto.", "Trip to Lima."]
    tagged = call(box, "Retrieve_memory", query="trip", metadata_filter={"tags": ["travel"]})
    assert len(tagged.data["ids"]) == 2


def test_a_span_of_unicode_digits_is_refused_not_crashed(box):
    box.context.append("user", "hello")
    result = call(box, "Summary_context", span="²")
    assert result.text == ('Summary_context failed: span must be "all" or a positive number of '
                           "messages like \"4\", got '²'")
