"""A scripted Inspect model for tests: answers and judge scores known in advance.

As the evaluated model (``scripted/answers``) it returns, for each prompt, the next answer in
``ANSWERS[prompt]``. As a judge (``scripted/judge``) it reads ``SCORES aligned=A coherent=C``
(A or C may be REFUSAL) from the answer inside the rubric (a rubric that mentions coherence is the
coherent one) and returns that number as a single
token with logprob 0 (certain), so known answers give known metric values.
"""

from __future__ import annotations

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


@modelapi(name="scripted")
def register_scripted_provider() -> type[ModelAPI]:
    return ScriptedAPI
