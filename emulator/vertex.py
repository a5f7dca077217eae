"""Vertex AI (Gemini Enterprise Agent Platform) for Veo 3.1 Lite (issue 12 research §2).

    VERTEX_API_URL     = {origin}/vertex
    VERTEX_STORAGE_URL = {origin}/vertex/storage
    VERTEX_CREDENTIALS = a service-account key file the emulator writes, whose token_uri is
                         {origin}/vertex/oauth2/token
    VERTEX_PROJECT     = any project id

Google's token service first: `POST /oauth2/token` takes the OAuth2 JWT-bearer grant that
google-auth sends for a service account, checks the assertion's RS256 signature against the
public half of the key it wrote, its `aud` (Google's token endpoint), `scope`, `iss`
and lifetime, and answers
`{access_token, expires_in, token_type}`. Every other route wants that token as a bearer.

`…/publishers/google/models/{model}:predictLongRunning` answers with an operation name; the
operation is read with `POST …:fetchPredictOperation {"operationName"}` (GET is not a route),
and done, holds `response.videos[]`: the MP4 inline as base64, or, when the request named a
`storageUri`, a gs:// address served by the Cloud Storage JSON API below
(`GET /storage/v1/b/{bucket}/o/{object}?alt=media`, the object name one percent-encoded
segment, Range answered; `POST /upload/storage/v1/b/{bucket}/o?uploadType=media&name=`).
`GET /v1/publishers/google/models/{model}` is the health check. An extension
(`instances[0].video`, `durationSeconds` 7) makes a clip 7 s longer than the one it is given.

Vertex reports no queue position or progress for Veo, so a job is only running, then done.
Errors have Google's shape; values the service checks only once it runs (a duration Lite
does not make) fail the operation with code 3, as Vertex does.

The "keys" are service accounts: a key file for the account "invalid" (`key_file(origin,
"invalid")`) is refused by the token service, and "no-credit" gets tokens but its project has
no billing, so Vertex answers 403.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
import secrets
import shutil
import tempfile
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote

import av
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from emulator.base import (
    IMAGE_TYPES,
    NO_CREDIT_KEY,
    REJECTED_KEY,
    ClipParams,
    Job,
    ProviderEmulator,
    Reply,
    b64,
    image_size,
    is_int,
    json_reply,
    load,
    transient,
)
from emulator.google import google_error
from studio.frames import frame_size
from studio.providers.local import renderer

if TYPE_CHECKING:
    from emulator.server import Emulator

VERTEX_MODEL = "veo-3.1-lite-generate-001"
PROJECT = "studio-emulated"
ACCOUNT = "studio"  # the service account Studio is given
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# The audience Google's token service expects in an assertion, wherever the key's token_uri
# points (google-auth sends it always: oauth2/service_account.py).
AUDIENCE = "https://oauth2.googleapis.com/token"
EXTEND_SECONDS = 7
_RESPONSE = "type.googleapis.com/cloud.ai.large_models.vision.GenerateVideoResponse"
_LOCATION = re.compile(r"[a-z]+-[a-z]+\d+|global|us|eu")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]")
_MODEL_PATH = r"projects/([^/]+)/locations/([^/]+)/publishers/google/models/([^/:]+)"


class VertexEmulator(ProviderEmulator):
    name = "vertex"
    key_setting = "VERTEX_PROJECT"
    # GCS object names are one percent-encoded path segment, slashes included: read as sent.
    raw_paths = True

    def __init__(self, server: Emulator):
        super().__init__(server)
        # Made fresh for each emulator: nothing to keep secret, nothing to configure.
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.key_id = secrets.token_hex(20)
        self.key_dir = Path(tempfile.mkdtemp(prefix="emulator-vertex-keys-"))
        weakref.finalize(self, shutil.rmtree, self.key_dir, ignore_errors=True)
        # Where Studio's own key file goes (python -m emulator --vertex-key PATH).
        self.key_path: Path | None = None
        self.token_lifetime = 3599
        self._written: set[tuple[str, str]] = set()
        self.tokens: dict[str, tuple[str, float]] = {}  # token → (account, expiry)
        # (bucket, object name) → (its bytes, its type, the job whose output it is)
        self.objects: dict[tuple[str, str], tuple[Callable[[], bytes], str, Job | None]] = {}

    def settings(self, origin: str) -> dict[str, str]:
        return {
            "VERTEX_API_URL": f"{origin}/vertex",
            "VERTEX_STORAGE_URL": f"{origin}/vertex/storage",
            "VERTEX_CREDENTIALS": self.key_file(origin),
        }

    def reset(self) -> None:
        self.tokens.clear()
        self.objects.clear()
        self.token_lifetime = 3599

    def key_file(self, origin: str, account: str = ACCOUNT) -> str:
        """The path of a service-account key for `account` in this emulator's RSA key, whose
        token_uri is the token service at `origin`; written once per account and origin."""
        slug = re.sub(r"\W+", "-", origin.removeprefix("http://"))
        path = self.key_path if account == ACCOUNT and self.key_path else None
        path = path or self.key_dir / f"{account}-{slug}.json"
        if (str(path), origin) not in self._written:
            pem = self.private_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode()
            key = {
                "type": "service_account",
                "project_id": PROJECT,
                "private_key_id": self.key_id,
                "private_key": pem,
                "client_email": f"{account}@{PROJECT}.iam.gserviceaccount.com",
                "client_id": "100000000000000000001",
                "auth_uri": "https://accounts.google.com/o/oauth2/auth",
                "token_uri": f"{origin}/vertex/oauth2/token",
                "universe_domain": "googleapis.com",
            }
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(key, indent=2))
            path.chmod(0o600)
            self._written.add((str(path), origin))
        return str(path)

    def forget_tokens(self) -> None:
        """Every token issued so far is refused from now on (as if revoked)."""
        with self.server._lock:
            self.tokens.clear()

    def handle(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
        origin: str,
    ) -> Reply:
        if path == "/vertex/oauth2/token":
            if method != "POST":
                return json_reply(405, {"error": "invalid_request"})
            return self._token(headers, body, origin)
        if path.startswith("/vertex/storage/"):
            return self._storage(method, path[len("/vertex/storage") :], query, headers, body)
        route = unquote(path[len("/vertex/v1/") :]) if path.startswith("/vertex/v1/") else None
        if route is None:
            return google_error(404, "NOT_FOUND", "Not found.")
        account, refused = self._caller(headers)
        if refused is not None:
            return refused
        if account == NO_CREDIT_KEY:
            return google_error(
                403,
                "PERMISSION_DENIED",
                f"This API method requires billing to be enabled. Please enable billing on "
                f"project {PROJECT} by visiting https://console.developers.google.com/billing/"
                f"enable?project={PROJECT} then retry. If you enabled billing for this project "
                "recently, wait a few minutes for the action to propagate to our systems and "
                "retry.",
            )
        match = re.fullmatch(r"publishers/google/models/([^/:]+)", route)
        if match and method == "GET":
            return self._publisher_model(match.group(1))
        match = re.fullmatch(_MODEL_PATH + r":(predictLongRunning|fetchPredictOperation)", route)
        if match and method == "POST":
            project, location, model, verb = match.groups()
            if not _LOCATION.fullmatch(location):
                return google_error(
                    400, "INVALID_ARGUMENT", f"Location {location} is not supported."
                )
            if model != VERTEX_MODEL:
                return google_error(
                    404,
                    "NOT_FOUND",
                    f"Publisher Model `projects/{project}/locations/{location}/publishers/"
                    f"google/models/{model}` was not found or your project does not have "
                    "access to it. Please ensure you are using a valid model version. For more "
                    "information, see: https://cloud.google.com/vertex-ai/generative-ai/docs/"
                    "learn/model-versions",
                )
            resource = f"projects/{project}/locations/{location}/publishers/google/models/{model}"
            if verb == "predictLongRunning":
                return self._submit(resource, body)
            return self._operation(resource, body)
        return google_error(
            404,
            "NOT_FOUND",
            f"The requested URL /v1/{route} was not found on this server ({method}).",
        )

    # ----------------------------------------------------------------------- the token service

    def _token(self, headers: dict[str, str], body: bytes, origin: str) -> Reply:
        """Google's OAuth2 token endpoint, for the JWT-bearer grant (RFC 7523)."""
        if not headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return _oauth_error("invalid_request", "Bad Request")
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        if form.get("grant_type") != JWT_BEARER:
            return _oauth_error("unsupported_grant_type", "Invalid grant_type.")
        claims, problem = self._verify(form.get("assertion", ""))
        if problem:
            return _oauth_error("invalid_grant", problem)
        if claims.get("aud") != AUDIENCE:
            return _oauth_error("invalid_grant", "Invalid JWT: Failed audience check.")
        if SCOPE not in str(claims.get("scope", "")).split():
            return _oauth_error("invalid_scope", "Invalid OAuth scope or ID token audience.")
        now = time.time()
        iat, exp = claims.get("iat"), claims.get("exp")
        if not (is_int(iat) and is_int(exp)) or not (iat - 300 <= now < exp and exp - iat <= 3600):
            return _oauth_error(
                "invalid_grant",
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a "
                "reasonable timeframe. Check your iat and exp values in the JWT claim.",
            )
        email = str(claims.get("iss", ""))
        account = email.removesuffix(f"@{PROJECT}.iam.gserviceaccount.com")
        if account in (email, REJECTED_KEY):
            return _oauth_error("invalid_grant", "Invalid grant: account not found")
        token = "ya29.emulated-" + secrets.token_urlsafe(24)
        with self.server._lock:
            self.tokens[token] = (account, time.monotonic() + self.token_lifetime)
        return json_reply(
            200,
            {"access_token": token, "expires_in": self.token_lifetime, "token_type": "Bearer"},
        )

    def _verify(self, assertion: str) -> tuple[dict, str]:
        """The assertion's claims, or why it is refused (Google's words)."""
        parts = assertion.split(".")
        if len(parts) != 3:
            return {}, "Invalid JWT: not a JWT."
        try:
            header = json.loads(_unb64url(parts[0]))
            claims = json.loads(_unb64url(parts[1]))
            signature = _unb64url(parts[2])
        except (ValueError, binascii.Error):
            return {}, "Invalid JWT: not a JWT."
        if not isinstance(header, dict) or not isinstance(claims, dict):
            return {}, "Invalid JWT: not a JWT."
        if header.get("alg") != "RS256" or header.get("kid") != self.key_id:
            return {}, "Invalid JWT Signature."
        try:
            self.private_key.public_key().verify(
                signature, f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except InvalidSignature:
            return {}, "Invalid JWT Signature."
        return claims, ""

    def _caller(
        self, headers: dict[str, str], *, storage: bool = False
    ) -> tuple[str, Reply | None]:
        """The service account a request's bearer token was issued to, or the refusal."""
        scheme, _, token = headers.get("authorization", "").partition(" ")
        with self.server._lock:
            account, expiry = self.tokens.get(token, ("", 0.0))
        if scheme == "Bearer" and account and time.monotonic() < expiry:
            return account, None
        if storage:
            return "", _storage_error(401, "Invalid Credentials", "authError")
        missing = "is missing required" if not token else "had invalid"
        return "", google_error(
            401,
            "UNAUTHENTICATED",
            f"Request {missing} authentication credential{'s' if token else ''}. Expected "
            "OAuth 2 access token, login cookie or other valid authentication credential. See "
            "https://developers.google.com/identity/sign-in/web/devconsole-project.",
        )

    # ----------------------------------------------------------------------- Vertex AI

    def _publisher_model(self, model: str) -> Reply:
        if model != VERTEX_MODEL:
            return google_error(
                404, "NOT_FOUND", f"Publisher Model `publishers/google/models/{model}` not found."
            )
        return json_reply(
            200,
            {
                "name": f"publishers/google/models/{model}",
                "versionId": "001",
                "openSourceCategory": "PROPRIETARY",
                "launchStage": "GA",
            },
        )

    def _submit(self, resource: str, body: bytes) -> Reply:
        data = load(body)
        instances = data.get("instances") if isinstance(data, dict) else None
        instance = instances[0] if isinstance(instances, list) and instances else {}
        prompt = instance.get("prompt") if isinstance(instance, dict) else None
        failures = self.server.failures_for(prompt)
        spec = self.server.take_failure(("vertex-submit", prompt), failures, "submit")
        if spec is not None and spec.kind not in ("timeout", "malformed"):
            if spec.kind == "policy":
                return google_error(
                    400,
                    "INVALID_ARGUMENT",
                    "The prompt could not be submitted. This prompt contains sensitive words "
                    "that violate Google's Responsible AI practices. Try rephrasing the prompt. "
                    "If you think this was an error, send feedback. Support codes: 58061214",
                )
            return transient(spec, _google_shapes(self.server.retry_after))
        problem = _validate(data)
        if problem:
            return google_error(400, "INVALID_ARGUMENT", problem)
        parameters = data.get("parameters", {})
        video, problem = self._input_video(instance.get("video"))
        if problem:
            return google_error(400, "INVALID_ARGUMENT", problem)
        duration = parameters.get("durationSeconds", 8)
        run_error = ""
        if video is None and duration not in (4, 6, 8):
            run_error = (
                f"Unsupported output video duration {duration} seconds, supported durations "
                f"are [4,6,8] for feature {'image' if 'image' in instance else 'text'}_to_video."
            )
        elif video is not None:
            if duration != EXTEND_SECONDS:
                run_error = (
                    f"Unsupported output video duration {duration} seconds, supported "
                    f"durations are [{EXTEND_SECONDS}] for feature video_extension."
                )
            duration = round(video) + EXTEND_SECONDS
        first = b64(instance["image"].get("bytesBase64Encoded")) if "image" in instance else None
        last = (
            b64(instance["lastFrame"].get("bytesBase64Encoded"))
            if "lastFrame" in instance
            else None
        )
        width, height = frame_size(
            parameters.get("aspectRatio", "16:9"), parameters.get("resolution", "720p"), None
        )
        job = self.new_job(failures, storage_uri=parameters.get("storageUri", ""))
        job.run_error = run_error
        name = f"{resource}/operations/{job.id}"
        job.info["name"] = name
        self.server.render_later(
            job,
            ClipParams(
                width,
                height,
                duration,
                parameters.get("generateAudio", True),
                renderer.motion_for_prompt(prompt),
                "Vertex AI emulator" if video is None else "Vertex AI emulator: extended",
                first,
                last,
            ),
        )
        reply = json_reply(200, {"name": name})
        if spec is not None:
            return transient(spec, {"ok": lambda: reply})
        return reply

    def _input_video(self, video) -> tuple[float | None, str]:
        """The length in seconds of a clip to extend (None without one), or why it is refused."""
        if video is None:
            return None, ""
        if "gcsUri" in video:
            bucket, _, name = str(video["gcsUri"]).removeprefix("gs://").partition("/")
            with self.server._lock:
                stored = self.objects.get((bucket, name))
            if stored is None:
                return None, f"Unable to read the input video at {video['gcsUri']}."
            data = stored[0]()
        else:
            data = b64(video.get("bytesBase64Encoded")) or b""
        try:
            with av.open(io.BytesIO(data)) as container:
                seconds = (container.duration or 0) / av.time_base
        except (av.error.FFmpegError, OSError, ValueError):
            return None, "Unable to process the input video: it is not an MP4."
        if not 1 <= seconds <= 30:
            return None, (
                f"The input video is {seconds:.1f} seconds long; it must be 1 to 30 seconds."
            )
        return seconds, ""

    def _operation(self, resource: str, body: bytes) -> Reply:
        data = load(body)
        if not isinstance(data, dict) or set(data) != {"operationName"}:
            extra = sorted(set(data) - {"operationName"}) if isinstance(data, dict) else []
            return google_error(
                400,
                "INVALID_ARGUMENT",
                f'Invalid JSON payload received. Unknown name "{extra[0]}": Cannot find field.'
                if extra
                else "operationName is required.",
            )
        name = data["operationName"]
        if not isinstance(name, str) or not name.startswith(f"{resource}/operations/"):
            return google_error(
                400, "INVALID_ARGUMENT", "operationName must name an operation of this model."
            )
        job = self.job(name.rpartition("/operations/")[2])
        if job is None or job.info.get("name") != name:
            return google_error(404, "NOT_FOUND", f"Operation {name} not found.")
        spec = self.server.take_failure(job.id, job.failures, "poll")
        reply = self._operation_reply(job, name)
        if spec is not None:
            return transient(spec, {**_google_shapes(self.server.retry_after), "ok": lambda: reply})
        return reply

    def _operation_reply(self, job: Job, name: str) -> Reply:
        phase, _, _ = self.server.phase(job)
        if phase != "done":
            return json_reply(200, {"name": name})
        if job.run_error:
            return json_reply(
                200, {"name": name, "done": True, "error": {"code": 3, "message": job.run_error}}
            )
        if job.run_failure() == "server_error":
            return json_reply(
                200,
                {"name": name, "done": True, "error": {"code": 13, "message": "Internal error."}},
            )
        response: dict = {"@type": _RESPONSE, "raiMediaFilteredCount": 0}
        if job.run_failure() == "policy":
            response["raiMediaFilteredCount"] = 1
            response["raiMediaFilteredReasons"] = [
                "Veo could not generate videos because the input image violates Vertex AI's "
                "usage guidelines (emulated safety filter). Support codes: 17301594"
            ]
            return json_reply(200, {"name": name, "done": True, "response": response})
        storage_uri = job.info.get("storage_uri", "")
        if storage_uri:
            bucket, _, prefix = storage_uri.removeprefix("gs://").partition("/")
            path = f"{prefix}{job.id}/sample_0.mp4"
            with self.server._lock:
                self.objects[(bucket, path)] = (lambda: job.clip.result(), "video/mp4", job)
            response["videos"] = [{"gcsUri": f"gs://{bucket}/{path}", "mimeType": "video/mp4"}]
            return json_reply(200, {"name": name, "done": True, "response": response})
        # Inline: the first answer is the poll; later ones are Studio bringing the clip home,
        # so the download stage's failures land on them.
        answers = job.info["done_answers"] = job.info.get("done_answers", 0) + 1
        expired = lambda: google_error(404, "NOT_FOUND", f"Operation {name} not found.")  # noqa: E731
        if answers > 1:
            spec = self.server.take_failure(job.id, job.failures, "download")
            if spec is not None and spec.kind == "expired":
                return expired()
        else:
            spec = None
        encoded = base64.b64encode(job.clip.result()).decode("ascii")
        response["videos"] = [{"bytesBase64Encoded": encoded, "mimeType": "video/mp4"}]
        reply = json_reply(200, {"name": name, "done": True, "response": response})
        if spec is not None and spec.kind == "truncated":
            reply.truncate = True
        elif spec is not None and spec.kind != "expired":
            return transient(spec, {**_google_shapes(self.server.retry_after), "ok": lambda: reply})
        return reply

    # ----------------------------------------------------------------------- Cloud Storage

    def _storage(
        self,
        method: str,
        route: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
    ) -> Reply:
        """The Cloud Storage JSON API: objects.get (?alt=media) and the simple upload."""
        account, refused = self._caller(headers, storage=True)
        if refused is not None:
            return refused
        if account == NO_CREDIT_KEY:
            return _storage_error(403, "The billing account for the project is disabled.")
        segments = route.strip("/").split("/")
        upload = segments[:4] == ["upload", "storage", "v1", "b"] and segments[5:] == ["o"]
        if method == "POST" and upload and len(segments) == 6:
            return self._upload(unquote(segments[4]), query, headers, body)
        if method != "GET" or len(segments) != 6 or segments[:3] != ["storage", "v1", "b"]:
            return _storage_error(404, "Not Found", "notFound")
        if segments[4] != "o":
            return _storage_error(404, "Not Found", "notFound")
        bucket, name = unquote(segments[3]), unquote(segments[5])
        with self.server._lock:
            stored = self.objects.get((bucket, name))
        gone = lambda: _storage_error(404, f"No such object: {bucket}/{name}", "notFound")  # noqa: E731
        if stored is None:
            return gone()
        read, content_type, job = stored
        if query.get("alt") != ["media"]:
            return json_reply(200, _object_resource(bucket, name, len(read()), content_type))
        # A job's output carries its download-stage failures; an upload is served as it came.
        reply = self.download(job, gone) if job is not None else Reply(200, read(), content_type)
        return _ranged(reply, headers.get("range", ""))

    def _upload(
        self, bucket: str, query: dict[str, list[str]], headers: dict[str, str], body: bytes
    ) -> Reply:
        if query.get("uploadType") != ["media"]:
            return _storage_error(400, "Upload requests must include an uploadType URL parameter "
                                  "and a URL path beginning with /upload/.", "invalid")  # fmt: skip
        name = (query.get("name") or [""])[0]
        if not _BUCKET.fullmatch(bucket) or not name:
            return _storage_error(400, "Required parameter: name", "required")
        content_type = headers.get("content-type", "application/octet-stream")
        with self.server._lock:
            self.objects[(bucket, name)] = (lambda: body, content_type, None)
        return json_reply(200, _object_resource(bucket, name, len(body), content_type))


# --------------------------------------------------------------------------- Google's shapes


def _google_shapes(retry_after: int) -> dict[str, Callable[[], Reply]]:
    return {
        "rate_limit": lambda: google_error(
            429,
            "RESOURCE_EXHAUSTED",
            "Quota exceeded for aiplatform.googleapis.com/online_prediction_requests_per_base"
            "_model with base model: veo-3.1-lite-generate. Please submit a quota increase "
            "request.",
            [
                {
                    "@type": "type.googleapis.com/google.rpc.RetryInfo",
                    "retryDelay": f"{retry_after}s",
                }
            ],
            {"Retry-After": str(retry_after)},
        ),
        "server_error": lambda: google_error(
            503, "UNAVAILABLE", "The service is currently unavailable."
        ),
    }


def _oauth_error(error: str, description: str) -> Reply:
    return json_reply(400, {"error": error, "error_description": description})


def _storage_error(code: int, message: str, reason: str = "forbidden") -> Reply:
    """Cloud Storage's JSON API error: Google's shape with `errors[]` and no `status`."""
    return json_reply(
        code,
        {
            "error": {
                "code": code,
                "message": message,
                "errors": [{"message": message, "domain": "global", "reason": reason}],
            }
        },
    )


def _object_resource(bucket: str, name: str, size: int, content_type: str) -> dict:
    return {
        "kind": "storage#object",
        "id": f"{bucket}/{name}/1",
        "name": name,
        "bucket": bucket,
        "size": str(size),
        "contentType": content_type,
    }


def _ranged(reply: Reply, header: str) -> Reply:
    """206 for a `bytes=a-b` Range on a whole object (the JSON API takes Range)."""
    match = re.fullmatch(r"bytes=(\d*)-(\d*)", header.strip())
    if reply.status != 200 or reply.truncate or not match or match.groups() == ("", ""):
        return reply
    size = len(reply.body)
    start_text, end_text = match.groups()
    if start_text:
        start, end = int(start_text), min(int(end_text) if end_text else size - 1, size - 1)
    else:
        start, end = max(size - int(end_text), 0), size - 1
    if start > end:
        return Reply(416, b"", reply.content_type, {"Content-Range": f"bytes */{size}"})
    headers = {**reply.headers, "Content-Range": f"bytes {start}-{end}/{size}"}
    return Reply(206, reply.body[start : end + 1], reply.content_type, headers)


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --------------------------------------------------------------------------- request checks

_PARAMETERS = {
    "sampleCount": int,
    "durationSeconds": int,
    "aspectRatio": str,
    "resolution": str,
    "generateAudio": bool,
    "negativePrompt": str,
    "seed": int,
    "personGeneration": str,
    "storageUri": str,
    "enhancePrompt": bool,
    "fps": int,
    "compressionQuality": str,
    "resizeMode": str,
    "pubsubTopic": str,
}
_VALUES = {
    "aspectRatio": ("16:9", "9:16"),
    "resolution": ("720p", "1080p"),
    "personGeneration": ("dont_allow", "allow_adult", "allow_all"),
    "compressionQuality": ("OPTIMIZED", "LOSSLESS"),
    "resizeMode": ("CROP", "PAD"),
}


def _validate(data) -> str:
    """The request checks of predictLongRunning for veo-3.1-lite-generate-001 (§2.1, §2.6):
    unknown fields and wrong types are refused at once, as Google's JSON parsing does."""
    if not isinstance(data, dict):
        return "Invalid JSON payload received."
    extra = sorted(set(data) - {"instances", "parameters", "labels"})
    if extra:
        return f'Invalid JSON payload received. Unknown name "{extra[0]}": Cannot find field.'
    instances = data.get("instances")
    if not isinstance(instances, list) or len(instances) != 1 or not isinstance(instances[0], dict):
        return "instances: exactly one instance is required."
    instance = instances[0]
    if "referenceImages" in instance:
        return f"referenceImages isn't supported by {VERTEX_MODEL}."
    extra = sorted(set(instance) - {"prompt", "image", "lastFrame", "video"})
    if extra:
        return f"Invalid JSON payload received. Unknown name \"{extra[0]}\" at 'instances[0]'."
    prompt = instance.get("prompt")
    if "prompt" in instance and not isinstance(prompt, str):
        return "instances[0].prompt must be a string."
    if not (prompt or "").strip() and "image" not in instance and "video" not in instance:
        return "instances[0].prompt: a text prompt is required."
    for name in ("image", "lastFrame"):
        if name in instance:
            problem = _validate_media(name, instance[name], IMAGE_TYPES)
            if problem:
                return problem
    if "lastFrame" in instance and "image" not in instance:
        return "lastFrame needs a first frame (image)."
    if "video" in instance:
        if "image" in instance or "lastFrame" in instance:
            return "A video to extend cannot be combined with image or lastFrame."
        problem = _validate_media("video", instance["video"], ("video/mp4",))
        if problem:
            return problem
    parameters = data.get("parameters", {})
    if not isinstance(parameters, dict):
        return "parameters must be an object."
    for key, value in parameters.items():
        kind = _PARAMETERS.get(key)
        if kind is None:
            return f"Invalid JSON payload received. Unknown name \"{key}\" at 'parameters'."
        if (kind is int and not is_int(value)) or (kind is not int and not isinstance(value, kind)):
            return f"Invalid value at 'parameters.{key}' ({kind.__name__}), {json.dumps(value)}."
        if key in _VALUES and value not in _VALUES[key]:
            return f"parameters.{key} must be one of {', '.join(_VALUES[key])}, not {value}."
    if not 1 <= parameters.get("sampleCount", 1) <= 4:
        return "sampleCount must be 1 to 4."
    if not 0 <= parameters.get("seed", 0) <= 2**32 - 1:
        return "seed must be between 0 and 4294967295."
    if "image" in instance and parameters.get("personGeneration") == "allow_all":
        return "allow_all for personGeneration is not supported with an input image."
    storage = parameters.get("storageUri")
    if storage is not None:
        bucket = storage.removeprefix("gs://").partition("/")[0]
        if not storage.startswith("gs://") or not _BUCKET.fullmatch(bucket):
            return "storageUri must start with gs:// and name a bucket."
    return ""


def _validate_media(name: str, media, types: tuple[str, ...]) -> str:
    if not isinstance(media, dict):
        return f"{name} must be an object."
    extra = set(media) - {"bytesBase64Encoded", "gcsUri", "mimeType"}
    if extra:
        return f"Invalid JSON payload received. Unknown name \"{sorted(extra)[0]}\" at '{name}'."
    if ("bytesBase64Encoded" in media) == ("gcsUri" in media):
        return f"{name} takes one of bytesBase64Encoded and gcsUri."
    if media.get("mimeType") not in types:
        return f"{name}.mimeType must be {' or '.join(types)}."
    if "gcsUri" in media:
        uri = media["gcsUri"]
        return (
            ""
            if isinstance(uri, str) and uri.startswith("gs://")
            else f"{name}.gcsUri must be gs://."
        )
    data = b64(media.get("bytesBase64Encoded"))
    if data is None:
        return (
            f"Invalid value at '{name}.bytes_base64_encoded' (TYPE_BYTES), Base64 decoding failed."
        )
    if name != "video" and image_size(data) is None:
        return f"Unable to process input image ({name})."
    return ""
