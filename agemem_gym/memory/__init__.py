"""Long-term memory (a vector store), short-term memory (the context) and their helpers."""

from agemem_gym.memory.context import (
    ApproxTokenCounter,
    Context,
    Message,
    TokenCounter,
    TokenizerCounter,
)
from agemem_gym.memory.encoders import (
    ENCODERS,
    Encoder,
    HashingEncoder,
    SentenceTransformerEncoder,
    make_encoder,
)
from agemem_gym.memory.ltm import LongTermMemory, MemoryEntry, MemoryNotFoundError
from agemem_gym.memory.summarizers import (
    ExtractiveSummarizer,
    LLMSummarizer,
    Summarizer,
    make_summarizer,
)

__all__ = [
    "ENCODERS",
    "ApproxTokenCounter",
    "Context",
    "Encoder",
    "ExtractiveSummarizer",
    "HashingEncoder",
    "LLMSummarizer",
    "LongTermMemory",
    "MemoryEntry",
    "MemoryNotFoundError",
    "Message",
    "SentenceTransformerEncoder",
    "Summarizer",
    "TokenCounter",
    "TokenizerCounter",
    "make_encoder",
    "make_summarizer",
]
