"""The warm-start measurement: SFT of smollm2-135m on the memory-random teacher, one epoch.

Usage: python sft_measure.py OUT EPISODES TOKENS_PER_BATCH
"""

import json
import sys
import time

from agemem_gym.llm.models import resolve_model
from agemem_gym.training.sft import SFTConfig, train_sft

env = {"num_facts": 1, "num_updates": 0, "num_deletes": 0, "small_talk": 0, "num_distractors": 1,
       "distractor_sentences": 1, "num_queried": 1, "max_steps_per_turn": 2, "prompt": "compact"}
t = time.perf_counter()
stats = train_sft(SFTConfig(model=resolve_model("smollm2-135m"), out=sys.argv[1], env_options=env,
                            teacher_options={"top_k": 1, "answer": "quote"}, episodes=int(sys.argv[2]),
                            epochs=1, learning_rate=2e-5, tokens_per_batch=int(sys.argv[3]), progress=False))
print(json.dumps({**stats, "seconds": time.perf_counter() - t}))
