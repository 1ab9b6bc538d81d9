"""ConversationEvent -> a conversation the Llama Guard templates accept.

Meta's templates need turns that alternate user/assistant starting with the user,
and they assess the *last* turn ('User' when the number of turns is odd, else
'Agent'). Chat logs are messier, so guardstream normalises them:

1. Consecutive messages of one role are merged into one turn, their content items
   kept in order (each text item still becomes its own ``User:``/``Agent:`` line).
2. The assessed turn follows ``classify``: ``auto`` = the last turn; ``prompt`` =
   the last user turn; ``response`` = the last assistant turn. Turns after the
   assessed one are dropped, with their images (nothing after the assessed turn
   is judged). A mode whose role never speaks is not supported.
3. A conversation that starts with the assistant gets an empty user turn in front:
   the vision template renders no line for it, the 8B template a bare ``User:`` line.
4. Text is kept verbatim; rendering trims each text item as the templates do.
"""

from __future__ import annotations

from schemas.conversation import ConversationEvent, ImageContent, TextContent
from worker.prompt.exceptions import ConversationNotSupported
from worker.prompt.types import Conversation, Role, Turn


def normalize(event: ConversationEvent) -> Conversation:
    turns = _merge_same_role(event)
    turns = _truncate_to_assessed(turns, event.classify)
    if turns[0].role == "assistant":
        turns = [Turn(role="user", texts=(), images=()), *turns]
    return Conversation(turns=tuple(turns))


def _merge_same_role(event: ConversationEvent) -> list[Turn]:
    turns: list[Turn] = []
    for message in event.messages:
        texts = tuple(item.text for item in message.content if isinstance(item, TextContent))
        images = tuple(item for item in message.content if isinstance(item, ImageContent))
        if turns and turns[-1].role == message.role:
            last = turns[-1]
            turns[-1] = Turn(message.role, last.texts + texts, last.images + images)
        else:
            turns.append(Turn(message.role, texts, images))
    return turns


def _truncate_to_assessed(turns: list[Turn], classify: str) -> list[Turn]:
    if classify == "auto":
        return turns
    role: Role = "user" if classify == "prompt" else "assistant"
    for index in range(len(turns) - 1, -1, -1):
        if turns[index].role == role:
            return turns[: index + 1]
    raise ConversationNotSupported(
        f"classify={classify!r} but the conversation has no {role} message to assess"
    )
