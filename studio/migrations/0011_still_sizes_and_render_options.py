"""Stills keep their file's size, and the local renderer's queue keeps a clip's options whole.

SourceImage.size_bytes is what a provider is sent; it is read from storage once here for
existing stills (0 where the file is gone). A queued LocalRender's spec becomes
{"options": ClipOptions as JSON, "seed": …}, its stills found again by their file names.
"""

from django.core.files.storage import default_storage
from django.db import migrations, models


def sizes(apps, schema_editor):
    SourceImage = apps.get_model("studio", "SourceImage")
    for image in SourceImage.objects.iterator():
        try:
            image.size_bytes = default_storage.size(image.file.name)
        except OSError:
            continue
        image.save(update_fields=["size_bytes"])


def render_options(apps, schema_editor):
    LocalRender = apps.get_model("studio", "LocalRender")
    SourceImage = apps.get_model("studio", "SourceImage")

    def still(name):
        image = SourceImage.objects.filter(file=name).first() if name else None
        if image is None:
            return None
        return {"id": image.pk, "name": image.file.name, "content_type": image.content_type,
                "width": image.width, "height": image.height, "size_bytes": image.size_bytes}  # fmt: skip

    for render in LocalRender.objects.iterator():
        spec = render.spec
        if "options" in spec:
            continue
        width, height = spec["width"], spec["height"]
        render.spec = {
            "options": {
                "prompt": spec["prompt"], "mode": spec["mode"], "negative_prompt": "",
                "duration": spec["duration"], "resolution": f"{min(width, height)}p",
                "aspect": "16:9" if width >= height else "9:16", "audio": spec["audio"],
                "seed": spec["seed"], "framing": "", "image": still(spec["image"]),
                "last_frame": still(spec["last_frame"]),
            },
            "seed": spec["seed"],
        }  # fmt: skip
        render.save(update_fields=["spec"])


class Migration(migrations.Migration):
    dependencies = [("studio", "0010_webhook_deliveries")]

    operations = [
        migrations.AddField(
            model_name="sourceimage",
            name="size_bytes",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.RunPython(sizes, migrations.RunPython.noop),
        migrations.RunPython(render_options, migrations.RunPython.noop),
    ]
