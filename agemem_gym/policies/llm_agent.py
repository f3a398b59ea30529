"""The AgeMem agent: a language model that manages its memory through the six tools.

The env's system prompt already carries the protocol and the tool schemas, so the agent sends
the observation as it is. AgeMem-noRL is this agent on a base model; a trained checkpoint is
just another model path. ``agemem-rag`` is the paper's RAG variant: the short-term tools are
removed and the env appends the top-k memories before every stage-3 turn.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from agemem_gym.errors import ConfigError
from agemem_gym.llm import LLMBackend, make_backend
from agemem_gym.policies.base import Policy
from agemem_gym.spaces import Observation
from agemem_gym.tools import LTM_TOOLS

# Generation stops right after a complete action, so a model cannot ramble past it.
STOP = ("</tool_call>", "</answer>")


class AgeMemAgent(Policy):
    """Sends each context to an LLM backend and returns its raw response.

    Args:
        model: a local folder or hub id (``transformers``), or the served model's name
            (``openai``).
        backend: ``transformers`` or ``openai``.
        base_url: the OpenAI-compatible server (``openai`` backend).
        max_new_tokens: the response limit (the paper: 2,048).
        temperature: 0 for greedy decoding.
        top_p: nucleus sampling.
        seed: sampling seed.
        logprobs: also ask for each completion token's log-prob (for training).
        keep_generations: put each response's :class:`~agemem_gym.llm.base.Generation`
            (token ids, log-probs) in :meth:`last_usage` under ``"generation"``.
        llm: an already built backend (``model`` and ``backend`` are then ignored).
        **backend_options: passed to the backend (``device=``, ``max_concurrency=``, ...).

    Example:
        >>> from agemem_gym.llm.base import Generation, LLMBackend
        >>> class Scripted(LLMBackend):  # stands in for a model's text
        ...     name = "scripted"
        ...     def generate(self, prompts, **kw):
        ...         return [Generation("<think></think><answer>hi</answer>", 10, 4, 0.01) for _ in prompts]
        ...     def count_tokens(self, text): return len(text) // 4
        >>> agent = AgeMemAgent(llm=Scripted())
        >>> agent.act(({"id": "m1", "role": "user", "content": "hello"},), {})
        '<think></think><answer>hi</answer>'
        >>> agent.last_usage()
        [{'llm_calls': 1, 'prompt_tokens': 10, 'completion_tokens': 4, 'seconds': 0.01}]
    """

    name: ClassVar[str] = "agemem"

    def __init__(self, model: str = "", backend: str = "transformers", *, base_url: str | None = None,
                 max_new_tokens: int = 512, temperature: float = 0.0, top_p: float = 1.0,
                 seed: int | None = None, logprobs: bool = False, keep_generations: bool = False,
                 llm: LLMBackend | None = None, **backend_options: Any):
        if llm is None:
            if not model:
                raise ConfigError("the agemem agent needs a model: --agent-arg model=PATH_OR_ID "
                                  "(or --model on the CLI)")
            if base_url is not None:
                backend_options["base_url"] = base_url
            llm = make_backend(backend, model, **backend_options)
        self.llm = llm
        self.max_new_tokens, self.temperature, self.top_p = max_new_tokens, temperature, top_p
        self.seed, self.logprobs, self.keep_generations = seed, logprobs, keep_generations
        self._last: list[dict[str, Any]] = []

    def act(self, observation: Observation, info: dict[str, Any]) -> str:
        return self.act_batch([observation], [info])[0]

    def act_batch(self, observations: Sequence[Observation],
                  infos: Sequence[dict[str, Any]]) -> list[str]:
        prompts = [[{"role": m["role"], "content": m["content"]} for m in obs] for obs in observations]
        generations = self.llm.generate(
            prompts, max_new_tokens=self.max_new_tokens, temperature=self.temperature,
            top_p=self.top_p, seed=self.seed, stop=STOP, logprobs=self.logprobs,
        )
        self._last = [{"llm_calls": 1, "prompt_tokens": g.prompt_tokens,
                       "completion_tokens": g.completion_tokens, "seconds": g.seconds}
                      for g in generations]
        if self.keep_generations:
            for usage, generation in zip(self._last, generations, strict=True):
                usage["generation"] = generation
        return [g.text for g in generations]

    def settings(self) -> dict[str, Any]:
        return {"max_new_tokens": self.max_new_tokens, "temperature": self.temperature, "top_p": self.top_p,
                "seed": self.seed}

    def last_usage(self) -> list[dict[str, Any]] | None:
        return self._last


class AgeMemRAGAgent(AgeMemAgent):
    """The paper's -RAG variant: no short-term tools; retrieval appended every stage-3 step."""

    name: ClassVar[str] = "agemem-rag"
    env_options: ClassVar[dict[str, Any]] = {"tools": LTM_TOOLS, "auto_retrieve": True}
