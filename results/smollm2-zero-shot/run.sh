#!/usr/bin/env bash
# Zero-shot SmolLM2-135M-Instruct (the agemem agent, no training) on the six benchmarks at small
# settings: 2 episodes per benchmark, batched together, one torch thread per run, three runs at a
# time. Assistant and HotpotQA play all three stages; the four engine benchmarks play stage 3 only
# (their stage 1-2 turns were the bulk of the cost) with 4 engine steps. One reply per turn: a
# reply that breaks the protocol ends the turn.
# Usage: bash results/smollm2-zero-shot/run.sh   (from the repository root; resumable)
set -uo pipefail
OUT=results/smollm2-zero-shot
DATA=${AGEMEM_SHARED_DATA:-../shared/data}
export OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
COMMON=(--agent agemem --model smollm2-135m --episodes 2 --concurrency 2 --threads 1 --no-progress
        --agent-arg max_new_tokens=48 --env-arg max_steps_per_turn=1)
declare -A ARGS=(
  [assistant]="--env-arg num_facts=3 --env-arg num_updates=1 --env-arg num_deletes=0 --env-arg num_distractors=1 --env-arg num_queried=1"
  [hotpotqa]="--data $DATA/hotpotqa/hotpot_dev_distractor_v1_first103.json --env-arg num_distractors=1"
  [babyai]="--stages 3 --data $DATA/agentboard_babyai --env-arg max_steps=4"
  [pddl]="--stages 3 --data $DATA/agentboard_pddl --env-arg max_steps=4"
  [sciworld]="--stages 3 --data $DATA/agentboard_scienceworld --env-arg max_steps=4"
  [alfworld]="--stages 3 --data $DATA/alfworld --env-arg max_steps=4"
)
one() {  # one benchmark, at most 20 minutes; wall time and peak memory in logs/<env>.time.txt
  local env=$1
  mkdir -p "$OUT/logs"
  # shellcheck disable=SC2086
  nice -n 10 timeout 1200 /usr/bin/time -v -o "$OUT/logs/$env.time.txt" \
    agemem-bench run --env "$env" "${COMMON[@]}" ${ARGS[$env]} --out "$OUT/$env" > "$OUT/logs/$env.log" 2>&1
  echo "$env exit $?" >> "$OUT/logs/exit.txt"
}
queue() { for env in "$@"; do one "$env"; done; }
queue assistant babyai &
queue hotpotqa pddl &
queue sciworld alfworld &
wait
