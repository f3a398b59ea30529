"""Memory baselines (No-Memory, Mem0, Mem0g, A-Mem, LangMem, RAG) behind the Policy interface."""
