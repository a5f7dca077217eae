"""What Google's APIs (the Gemini API and Vertex AI) answer in common: the error body."""

from __future__ import annotations

from emulator.base import Reply, json_reply


def google_error(
    code: int, status: str, message: str, details: list | None = None, headers=None
) -> Reply:
    """Google's `{"error": {"code", "message", "status"[, "details"]}}` reply."""
    error = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return json_reply(code, {"error": error}, headers)
