"""Vertex AI (now branded Gemini Enterprise Agent Platform) for Veo 3.1 Lite, the generally
available `veo-3.1-lite-generate-001` (issue 12 research §2). Called over REST with httpx;
the shapes are Google's REST reference and those the google-genai SDK (3.6.1) sends.

submit: POST {base}/v1/projects/{project}/locations/{location}/publishers/google/models/
{model}:predictLongRunning → an operation name (§2.1).
poll: POST {base}/v1/{the model's resource}:fetchPredictOperation {"operationName": name}:
Veo's operations are not read with GET (§2.2; the SDK's operations.py does this too). Done,
`response.videos[]` holds the clip inline (bytesBase64Encoded) or, with VERTEX_OUTPUT_BUCKET
sent as `parameters.storageUri`, its gs:// address.
fetch: gs:// through the Cloud Storage JSON API with the same token (§2.4); inline, see
`_save_inline`.
check: GET {base}/v1/publishers/google/models/{model} (§2.5).
No cancel: none is documented for Veo's operations (§6), so a cancelled job may still be
made and billed.

{base} is VERTEX_API_URL, or the location's own host (`api_base`). Tokens come from auth.py.
Express mode (an API key) is not offered: Google documents it for generateContent and
countTokens, not for Veo's predictLongRunning (§2.3).
"""

from __future__ import annotations

import base64
import binascii
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from django.conf import settings

from studio.options import ClipOptions
from studio.providers import google, http
from studio.providers.base import (
    AccountError,
    Billing,
    ContentPolicyError,
    GenerationRequest,
    Handle,
    HealthCheck,
    InvalidRequestError,
    ModelUnavailableError,
    Phase,
    PollResult,
    ProviderError,
)
from studio.providers.names import LABELS
from studio.providers.vertex import auth, config
from studio.providers.vertex.capabilities import CAPABILITIES
from studio.providers.vertex.prices import PRICES

# gs:// results are read through the Cloud Storage JSON API's own host (§2.4); the download
# is not redirected elsewhere as far as documented. VERTEX_MEDIA_HOSTS adds more.
MEDIA_HOSTS = ("storage.googleapis.com",)
# What a done operation's result_url holds when the clip came back inline: the index of the
# video in `response.videos` (see _save_inline).
INLINE = "inline:"
# Veo on Vertex continues clips 1 to 30 s long (extend-videos page, §2.6).
EXTEND_INPUT_SECONDS = (1.0, 30.0)

_PROJECT = re.compile(r"[a-z0-9][a-z0-9.:-]{0,62}")
_LOCATION = re.compile(r"[a-z][a-z0-9-]{0,62}")
_MODEL = re.compile(r"[a-z0-9][a-z0-9._-]{0,127}")
_BUCKET = re.compile(r"gs://([a-z0-9][a-z0-9._-]{1,220}[a-z0-9])(/.*)?")
_OPERATION = re.compile(
    r"projects/[^/]+/locations/([a-z][a-z0-9-]*)/publishers/google/models/[^/]+/operations/[^/]+"
)
_ACCOUNT = "An administrator needs to check VERTEX_CREDENTIALS and the project's access."


class VertexProvider(http.HttpProvider):
    name = "vertex"
    label = LABELS[name]
    poll_interval_seconds = 10.0  # a Lite clip takes about a minute
    capabilities = CAPABILITIES
    prices = PRICES

    def missing_setup(self) -> str:
        project, location = config.PROJECT.value, config.LOCATION.value
        if not project:
            return "Set VERTEX_PROJECT and credentials to use Vertex AI."
        if not _PROJECT.fullmatch(project):
            return "VERTEX_PROJECT must be a Google Cloud project id, such as my-project-123."
        if not _LOCATION.fullmatch(location):
            return "VERTEX_LOCATION must be a Google Cloud region, such as us-central1, or global."
        if not _MODEL.fullmatch(_model()):
            return "VERTEX_MODEL must be a model id, such as veo-3.1-lite-generate-001."
        if config.OUTPUT_BUCKET.value and not _BUCKET.fullmatch(config.OUTPUT_BUCKET.value):
            return "VERTEX_OUTPUT_BUCKET must be a gs:// address, such as gs://my-bucket/studio/."
        return auth.problem()

    # ----------------------------------------------------------------------- protocol

    def model_id(self, options: ClipOptions) -> str:
        return _model()

    def _submit(self, request: GenerationRequest) -> Handle:
        reason = self.missing_setup()
        if reason:
            raise AccountError(reason)
        project, location, model = config.PROJECT.value, config.LOCATION.value, _model()
        url = (
            f"{api_base(location)}/v1/projects/{project}/locations/{location}"
            f"/publishers/google/models/{model}:predictLongRunning"
        )
        body = self._body(request)
        response = self._send("POST", url, json=body, submitting=True, check=False)
        if response.status_code == 404:
            # Google's words: "Publisher Model projects/…/models/<id> was not found or your
            # project does not have access to it" (§2.3). Nothing was made.
            error, _ = google.error_of(response)
            raise ModelUnavailableError(
                f"{self.label} does not offer {model} to this project"
                f"{http.said(str(error.get('message') or ''))} An administrator needs to "
                "check VERTEX_MODEL, VERTEX_PROJECT and VERTEX_LOCATION."
            )
        if response.status_code >= 400:
            raise self._error(response)
        name = self._json(response, submitting=True).get("name")
        if not isinstance(name, str) or len(name) > 255 or not _OPERATION.fullmatch(name):
            raise http.malformed_reply(self.label, submitting=True)
        return Handle(provider_job_id=name)

    def poll(self, handle: Handle) -> PollResult:
        data = self._operation(handle.provider_job_id)
        if not data.get("done"):
            # Vertex reports neither a queue position nor progress for Veo.
            return PollResult(Phase.RUNNING)
        if isinstance(data.get("error"), dict):
            raise self._status_error(data["error"], http_status=None, terminal=True)
        response = http.dict_of(data.get("response"))
        for index, video in enumerate(response.get("videos") or []):
            video = http.dict_of(video)
            uri = video.get("gcsUri")
            if isinstance(uri, str) and uri.startswith("gs://"):
                return PollResult(Phase.SUCCEEDED, result_url=uri)
            if isinstance(video.get("bytesBase64Encoded"), str) and video["bytesBase64Encoded"]:
                return PollResult(Phase.SUCCEEDED, result_url=f"{INLINE}{index}")
        if response.get("raiMediaFilteredCount") or response.get("raiMediaFilteredReasons"):
            reasons = [str(r) for r in response.get("raiMediaFilteredReasons") or [] if r]
            # Google bills only clips that are made (third-party copies of its pricing page).
            raise ContentPolicyError(
                f"Google's safety filters blocked this clip{http.said(' '.join(reasons))} "
                "No clip was made, so you were not charged.",
                billing=Billing.NOT_BILLED,
            )
        raise ProviderError(
            f"{self.label} finished without a clip and gave no reason. You were not charged.",
            billing=Billing.NOT_BILLED,
        )

    def fetch(self, handle: Handle, result_url: str, dest: Path) -> None:
        if result_url.startswith(INLINE):
            self._save_inline(handle, result_url, dest)
            return
        bucket, path = _gcs(result_url, self.label)
        http.download(
            self._object_url(bucket, path),
            dest,
            who=self.label,
            hosts=self.media_hosts(),
            # The token goes to the storage URL's own origin only, never to a redirect.
            headers=self.auth_headers(),
            client=self.client,
        )

    def media_hosts(self) -> http.MediaHosts:
        return http.MediaHosts.build(
            MEDIA_HOSTS, [config.STORAGE_URL.value], extra=config.MEDIA_HOSTS.value
        )

    def check(self) -> HealthCheck:
        """The publisher model, read with our token (§2.5): proves the credentials and that
        the model exists, not that the project may bill for it."""
        reason = self.missing_setup()
        if reason:
            return HealthCheck(key_ok=False, model_ok=None, message=reason)
        url = f"{api_base(config.LOCATION.value)}/v1/publishers/google/models/{_model()}"
        try:
            response = self._send("GET", url, check=False)
        except AccountError as refused:  # the token service refused the credentials
            return HealthCheck(key_ok=False, model_ok=None, message=str(refused))
        if response.status_code < 300:
            return HealthCheck(key_ok=True, model_ok=True)
        if response.status_code in (401, 403):
            return HealthCheck(key_ok=False, model_ok=None, message=str(self._error(response)))
        if response.status_code == 404:
            error, _ = google.error_of(response)
            return HealthCheck(
                key_ok=True, model_ok=False, message=str(error.get("message") or "Not found.")
            )
        raise self._error(response)

    # ----------------------------------------------------------------------- building

    def _body(self, request: GenerationRequest) -> dict[str, Any]:
        options = request.options
        instance: dict[str, Any] = {"prompt": options.prompt}
        parameters: dict[str, Any] = {
            "sampleCount": 1,
            "durationSeconds": options.duration,  # an int
            "aspectRatio": options.fixed_aspect(),
            "resolution": options.resolution,
            "generateAudio": options.audio,
            "personGeneration": "allow_adult",
        }
        if request.extend_from is not None:
            # The stored clip is the start: Veo adds extend_seconds to it, following the
            # prompt, and returns the whole longer clip; stills are not sent with it.
            instance["video"] = self._video(request)
            parameters["durationSeconds"] = self.capabilities.extend_seconds
            parameters["aspectRatio"] = request.extend_from.aspect
        else:
            if options.mode in ("image", "first_last"):
                instance["image"] = google.inline(options.image, "image")
            if options.mode == "first_last":
                instance["lastFrame"] = google.inline(options.last_frame, "last_frame")
        if options.negative_prompt:
            parameters["negativePrompt"] = options.negative_prompt
        if options.seed is not None:
            parameters["seed"] = options.seed
        if _output_prefix():
            parameters["storageUri"] = _output_prefix()
        return {"instances": [instance], "parameters": parameters}

    def _video(self, request: GenerationRequest) -> dict[str, str]:
        """The clip to continue, inline, or (with a bucket) uploaded there first: the SDK
        says Vertex wants extension inputs in Cloud Storage (§2.6)."""
        clip = request.extend_from
        assert clip is not None
        low, high = EXTEND_INPUT_SECONDS
        if clip.content_type != "video/mp4":
            raise InvalidRequestError(
                f"{self.label} continues MP4 clips only.", field="extend_from"
            )
        if not low <= clip.duration <= high:
            raise InvalidRequestError(
                f"{self.label} continues clips {low:g} to {high:g} s long; this one is "
                f"{clip.duration:.1f} s.",
                field="extend_from",
            )
        data = clip.read()
        prefix = _output_prefix()
        if not prefix:
            return {
                "bytesBase64Encoded": base64.b64encode(data).decode("ascii"),
                "mimeType": clip.content_type,
            }
        match = _BUCKET.fullmatch(prefix)
        assert match is not None  # missing_setup checked the setting
        bucket, folder = match.group(1), (match.group(2) or "/")[1:]
        # Named after the job: a submit sent again replaces its own upload.
        name = f"{folder}studio-inputs/{request.reference}.mp4"
        storage = config.STORAGE_URL.value.rstrip("/")
        self._send(
            "POST",
            f"{storage}/upload/storage/v1/b/{quote(bucket, safe='')}/o",
            params={"uploadType": "media", "name": name},
            content=data,
            headers={"Content-Type": clip.content_type},
        )
        return {"gcsUri": f"gs://{bucket}/{name}", "mimeType": clip.content_type}

    def _object_url(self, bucket: str, path: str) -> str:
        # The object name is one path segment: percent-encoded, slashes included (§2.4).
        storage = config.STORAGE_URL.value.rstrip("/")
        return f"{storage}/storage/v1/b/{quote(bucket, safe='')}/o/{quote(path, safe='')}?alt=media"

    # ----------------------------------------------------------------------- results

    def _operation(self, name: str) -> dict[str, Any]:
        match = _OPERATION.fullmatch(name)
        if not match:
            raise ProviderError(f"{self.label} gave this job an id Studio cannot use.")
        resource = name.rpartition("/operations/")[0]
        url = f"{api_base(match.group(1))}/v1/{resource}:fetchPredictOperation"
        return self._json(self._send("POST", url, json={"operationName": name}))

    def _save_inline(self, handle: Handle, result_url: str, dest: Path) -> None:
        """An inline result is the whole MP4 as base64 inside the operation: several MB, too
        much for Job.result_url, a text column read with every job page. So the poll keeps
        only the video's index ("inline:0") and the clip is asked for again here, once, when
        it is brought home: fetchPredictOperation answers a done operation the same way each
        time, and the bytes go straight to the file, never through the database."""
        index = int(result_url[len(INLINE) :] or 0)
        data = self._operation(handle.provider_job_id)
        videos = http.dict_of(data.get("response")).get("videos") or []
        video = http.dict_of(videos[index] if index < len(videos) else None)
        encoded = video.get("bytesBase64Encoded")
        if not isinstance(encoded, str) or not encoded:
            raise ProviderError(f"{self.label} no longer returns this clip.")
        limit = settings.STUDIO_MAX_CLIP_BYTES
        if len(encoded) * 3 // 4 > limit:
            raise ProviderError(
                f"The clip from {self.label} is larger than Studio accepts "
                f"({limit / (1024 * 1024):.1f} MB), so it was not saved."
            )
        try:
            clip = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise ProviderError(f"{self.label} sent a clip Studio could not decode.") from None
        mime = str(video.get("mimeType") or "")
        if not mime.startswith("video/") and clip[4:8] != b"ftyp":
            raise ProviderError(
                f"{self.label} sent a file that is not an MP4 video, so it was not saved."
            )
        dest.write_bytes(clip)

    # ----------------------------------------------------------------------- transport

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {auth.bearer(self.client)}"}

    def _send(
        self,
        method: str,
        url: str,
        *,
        submitting: bool = False,
        check: bool = True,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Every call carries the bearer. A 401 means Google no longer takes our token
        (revoked, or its clock ahead of ours): one fresh token and one more try, as
        google-auth's own transports do; a 401 was never accepted, so a submit too."""
        extra = headers or {}
        response = super()._send(
            method,
            url,
            submitting=submitting,
            check=False,
            headers={**self.auth_headers(), **extra},
            **kwargs,
        )
        if response.status_code == 401:
            renewed = {"Authorization": f"Bearer {auth.bearer(self.client, renew=True)}"}
            response = super()._send(
                method, url, submitting=submitting, check=False, headers={**renewed, **extra},
                **kwargs,
            )  # fmt: skip
        if check and response.status_code >= 400:
            raise self._error(response)
        return response

    def _error(self, response: httpx.Response) -> ProviderError:
        """An HTTP error reply: Google's `{"error": {"code", "message", "status"}}` (§2.3),
        Cloud Storage's too (`status` absent, `errors` beside it)."""
        error, delay = google.error_of(response)
        return self._status_error(error, http_status=response.status_code, retry_after=delay)

    def _status_error(
        self,
        error: dict[str, Any],
        *,
        http_status: int | None,
        terminal: bool = False,
        retry_after: float | None = None,
    ) -> ProviderError:
        return google.status_error(
            error,
            who=self.label,
            credential="credentials",
            account=_ACCOUNT,
            http_status=http_status,
            terminal=terminal,
            retry_after=retry_after,
        )


def api_base(location: str) -> str:
    """VERTEX_API_URL, or the location's endpoint as Google documents it (§2.1; the SDK's
    _api_client.py): global is aiplatform.googleapis.com, the us and eu multi-regions have
    their own hosts, and every region is {location}-aiplatform.googleapis.com."""
    if config.API_URL.value:
        return config.API_URL.value.rstrip("/")
    if location == "global":
        return "https://aiplatform.googleapis.com"
    if location in ("us", "eu"):
        return f"https://aiplatform.{location}.rep.googleapis.com"
    return f"https://{location}-aiplatform.googleapis.com"


def _model() -> str:
    return config.MODEL.value or config.MODEL.default


def _output_prefix() -> str:
    """VERTEX_OUTPUT_BUCKET as a folder ("gs://bucket/studio/"), or ""."""
    bucket = config.OUTPUT_BUCKET.value
    return bucket if not bucket or bucket.endswith("/") else f"{bucket}/"


def _gcs(uri: str, who: str) -> tuple[str, str]:
    """("bucket", "path/of/object") from gs://bucket/path/of/object."""
    match = _BUCKET.fullmatch(uri)
    path = (match.group(2) or "")[1:] if match else ""
    if match is None or not path:
        raise ProviderError(f"{who} returned a clip address Studio cannot use.")
    return match.group(1), path


PROVIDER = VertexProvider
