"""Stored Prolific IDs lower-cased, as joins now store them (turing.participant.crowd.prolific_id), so that a
participant who joined before with an ID in capitals is found again by the lower-cased ID."""

import re

from django.db import migrations

# Only labels that are a Prolific ID: a participant_label given beside a PROLIFIC_PID is the researcher's own.
PROLIFIC_ID = re.compile(r"[0-9a-fA-F]{24}")


def lowercase_prolific_ids(apps, schema_editor):
    Participant = apps.get_model("turing", "Participant")
    for participant in Participant.objects.filter(cohort="prolific", label__regex=r"[A-F]"):
        lowered = participant.label.lower()
        if not PROLIFIC_ID.fullmatch(participant.label):
            continue
        # The same ID in both cases in one study: two participations already made; both are kept as they are,
        # since merging them would lose one's answers (the unique label per study would refuse it too).
        if Participant.objects.filter(study_id=participant.study_id, label=lowered).exists():
            continue
        Participant.objects.filter(pk=participant.pk).update(label=lowered)


class Migration(migrations.Migration):
    dependencies = [
        ("turing", "0003_trial_image_css_size"),
    ]

    operations = [migrations.RunPython(lowercase_prolific_ids, migrations.RunPython.noop)]
