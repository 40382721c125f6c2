"""A scripted Inspect model for tests: answers and judge scores known in advance.

As the evaluated model (``scripted/answers``) it returns, for each prompt, the next answer in
``ANSWERS[prompt]``. As a judge (``scripted/judge``) it reads ``SCORES aligned=A coherent=C``
(A or C may be REFUSAL) from the answer inside the rubric (a rubric that mentions coherence is the
coherent one) and returns that number as a single
token with logprob 0 (certain), so known answers give known metric values.

As a digit-splitting judge (``scripted/digits``) it reads ``DIGITS aligned=90:0.4,0:0.6
coherent=85:1`` -- the judge's distribution over whole replies -- and speaks it token by token:
numbers one digit per token, any other reply (``REFUSAL``) as one token, each reply followed by
``<|im_end|>``. It returns the greedy reply with every position's alternatives, and answers
assistant-prefix continuation requests (a final assistant message holding the reply so far) with
the next-token distribution after that prefix, as vLLM does with ``continue_final_message``.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any

from inspect_ai.model import (
    ChatCompletionChoice,
    ChatMessage,
    ChatMessageAssistant,
    GenerateConfig,
    Logprob,
    Logprobs,
    ModelAPI,
    ModelOutput,
    ModelUsage,
    TopLogprob,
    modelapi,
)
from inspect_ai.tool import ToolChoice, ToolInfo

ANSWERS: dict[str, list[str]] = {}
CALLS: Counter[str] = Counter()


class ScriptedAPI(ModelAPI):
    def __init__(
        self,
        model_name: str,
        base_url: str | None = None,
        api_key: str | None = None,
        config: GenerateConfig = GenerateConfig(),
        **model_args: Any,
    ) -> None:
        super().__init__(model_name, base_url, api_key, [], config)
        self.seen: Counter[str] = Counter()
        self.continues_assistant_prefix = model_name == "digits"

    async def generate(
        self,
        input: list[ChatMessage],
        tools: list[ToolInfo],
        tool_choice: ToolChoice,
        config: GenerateConfig,
    ) -> ModelOutput:
        CALLS[self.model_name] += 1
        prompt = input[-1].text
        if self.model_name == "judge":
            return self._judge(prompt, input)
        if self.model_name == "digits":
            return self._output(*digit_judge_reply(input, config))
        answers = ANSWERS.get(prompt, ["no script for this prompt"])
        answer = answers[self.seen[prompt] % len(answers)]
        self.seen[prompt] += 1
        system = [m.text for m in input if m.role == "system"]
        if system and "{system}" in answer:
            answer = answer.replace("{system}", system[0])
        return self._output(answer, None)

    def _judge(self, prompt: str, input: list[ChatMessage]) -> ModelOutput:
        if "EMPTY_JUDGE" in prompt:  # a judge that returns nothing usable
            return self._output("", None)
        rubric_text = re.sub(r"SCORES aligned=\w+ coherent=\w+", "", prompt)
        rubric = "coherent" if "coheren" in rubric_text.lower() else "aligned"
        match = re.search(rf"{rubric}=(\w+)", prompt)
        token = match.group(1) if match else "nonsense"
        logprobs = Logprobs(
            content=[
                Logprob(
                    token=token,
                    logprob=0.0,
                    top_logprobs=[TopLogprob(token=token, logprob=0.0)],
                )
            ]
        )
        return self._output(token, logprobs)

    def _output(self, text: str, logprobs: Logprobs | None) -> ModelOutput:
        return ModelOutput(
            model=self.model_name,
            choices=[
                ChatCompletionChoice(
                    message=ChatMessageAssistant(content=text, model=self.model_name),
                    stop_reason="stop",
                    logprobs=logprobs,
                )
            ],
            usage=ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2),
        )

    async def count_text_tokens(self, text: str) -> int:
        return len(text.split())


# ----------------------------------------------------------------- digit-splitting judge
END = "<|im_end|>"


def reply_distribution(prompt: str) -> dict[str, float]:
    """The scripted distribution over whole replies for the rubric in ``prompt``."""
    rubric_text = re.sub(r"DIGITS aligned=\S+ coherent=\S+", "", prompt)
    rubric = "coherent" if "coheren" in rubric_text.lower() else "aligned"
    match = re.search(rf"{rubric}=(\S+)", prompt)
    if match is None:
        return {"nonsense": 1.0}
    pairs = (item.split(":") for item in match.group(1).split(","))
    return {reply: float(p) for reply, p in pairs}


def reply_tokens(reply: str) -> list[str]:
    """Numbers one digit per token, other replies one token, then the end token."""
    return [*(list(reply) if reply.isdigit() else [reply]), END]


def next_tokens(replies: dict[str, float], prefix: str) -> list[tuple[str, float]]:
    """P(next token | reply text so far), most likely first (exact, from the reply distribution)."""
    after: Counter[str] = Counter()
    for reply, p in replies.items():
        tokens = reply_tokens(reply)
        for i in range(len(tokens)):
            if "".join(tokens[:i]) == prefix:
                after[tokens[i]] += p
    total = sum(after.values())
    if total == 0:
        return [(END, 1.0)]
    return sorted(((t, p / total) for t, p in after.items()), key=lambda tp: -tp[1])


def digit_judge_reply(input: list[ChatMessage], config: GenerateConfig) -> tuple[str, Logprobs]:
    """The greedy reply (or, after an assistant prefix, one token) with top logprobs."""
    prefix = input[-1].text if input[-1].role == "assistant" else ""
    prompt = next(m.text for m in reversed(input) if m.role == "user")
    replies = reply_distribution(prompt)
    k = config.top_logprobs or 1
    positions: list[Logprob] = []
    text = ""
    for _ in range(1 if prefix else config.max_tokens or 4):
        top = next_tokens(replies, prefix + text)[:k]
        token = top[0][0]
        positions.append(
            Logprob(
                token=token,
                logprob=math.log(top[0][1]),
                top_logprobs=[TopLogprob(token=t, logprob=math.log(p)) for t, p in top],
            )
        )
        if token == END:
            break
        text += token
    return text, Logprobs(content=positions)


@modelapi(name="scripted")
def register_scripted_provider() -> type[ModelAPI]:
    return ScriptedAPI
