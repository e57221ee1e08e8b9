"""Prompt rendering and incremental detokenization with stop sequences (torch-free)."""

from __future__ import annotations

from collections.abc import Sequence

from inference.engine.types import ChatMessage

# For tokenizers without a chat template (base models such as GPT-2).
PLAIN_ROLE_LABELS = {"system": "System", "user": "User", "assistant": "Assistant"}
PLAIN_TEMPLATE_STOPS = ("\nUser:", "\nSystem:")


def render_prompt(
    tokenizer, messages_or_prompt: str | Sequence[ChatMessage | dict]
) -> tuple[list[int], list[str]]:
    """Token ids of the prompt, plus stop sequences implied by the prompt format.

    A string is a raw completion prompt; a list of messages goes through the tokenizer's chat
    template, or a plain "Role: text" layout when the tokenizer has none.
    """
    if isinstance(messages_or_prompt, str):
        return list(tokenizer(messages_or_prompt)["input_ids"]), []
    messages = [ChatMessage.coerce(m).as_dict() for m in messages_or_prompt]
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        # The template writes the special tokens itself (begin token included).
        return list(tokenizer(text, add_special_tokens=False)["input_ids"]), []
    text = "".join(f"{PLAIN_ROLE_LABELS[m['role']]}: {m['content']}\n" for m in messages) + "Assistant:"
    return list(tokenizer(text)["input_ids"]), list(PLAIN_TEMPLATE_STOPS)


class TextAssembler:
    """Turns generated token ids into text deltas, holding back what may become a stop sequence.

    Byte-level tokenizers can split one character over several tokens; text ending in U+FFFD is
    incomplete and also held back until the next token completes it.
    """

    def __init__(self, tokenizer, stop: Sequence[str]):
        self.tokenizer = tokenizer
        self.stop = [s for s in stop if s]
        self.token_ids: list[int] = []
        self.emitted = 0  # characters already handed out
        self.text = ""
        self.stopped = False

    def add(self, token_id: int) -> str:
        """Append a token; return the text that is now safe to emit (maybe empty)."""
        self.token_ids.append(token_id)
        self.text = self.tokenizer.decode(self.token_ids, skip_special_tokens=True)
        if self.stop:
            # Only a stop sequence that ends in the newly added text can be new.
            search_from = max(0, self.emitted - max(len(s) for s in self.stop))
            hits = [i for s in self.stop if (i := self.text.find(s, search_from)) != -1]
            if hits:
                self.text = self.text[: min(hits)]
                self.stopped = True
                return self._emit(len(self.text))
        safe_end = len(self.text.rstrip("\ufffd"))
        hold = 0
        for stop in self.stop:
            # Hold back the longest tail that is the beginning of a stop sequence.
            for length in range(min(len(stop) - 1, safe_end - self.emitted), 0, -1):
                if self.text[safe_end - length : safe_end] == stop[:length]:
                    hold = max(hold, length)
                    break
        return self._emit(safe_end - hold)

    def finish(self) -> str:
        """The rest of the text at the end of generation (held-back tails included)."""
        return self._emit(len(self.text))

    def _emit(self, end: int) -> str:
        if end <= self.emitted:
            return ""
        delta = self.text[self.emitted : end]
        self.emitted = end
        return delta
