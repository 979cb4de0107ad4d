"""Scene pools, participant kinds, trial kinds and per-trial image URLs (issue: results a researcher can defend).

Existing data is carried over: practice trials become kind "practice" and the scored trials are renumbered
after them (one presentation order per participant); participants labelled "bot-NNNN" were made by
simulate_participants, the only way rehearsal bots were marked before, and become kind "bot"; existing
studies are marked created_before_pools, which their report states (their practice images were drawn
from the scored ones, and their lightness was never audited); a label
used twice in one study (possible before) keeps its first participant and the later ones get
" (duplicate N)" appended, so the new one-participant-per-label constraint holds without merging anyone.
Every trial gets its own image token. Stimulus.times_assigned is dropped: assignment now counts trials.
"""

import turing.models
from django.db import migrations, models
from django.db.models import Count, F


def carry_over(apps, schema_editor):
    Trial = apps.get_model("turing", "Trial")
    Participant = apps.get_model("turing", "Participant")
    Study = apps.get_model("turing", "Study")
    Trial.objects.filter(practice=True).update(kind="practice")
    practice_counts = (
        Trial.objects.filter(practice=True).values("participant").annotate(n=Count("pk")).values_list("participant", "n")
    )
    for participant_id, n_practice in practice_counts:
        Trial.objects.filter(participant_id=participant_id, practice=False).update(position=F("position") + n_practice)
    for trial in Trial.objects.filter(image_token=None).only("pk").iterator():
        Trial.objects.filter(pk=trial.pk).update(image_token=turing.models.new_token())

    Participant.objects.filter(label__regex=r"^bot-[0-9]+$").update(kind="bot")
    Study.objects.update(created_before_pools=True)
    repeated = (
        Participant.objects.exclude(label="").values("study", "label").annotate(n=Count("pk")).filter(n__gt=1)
    )
    for entry in repeated:
        later = Participant.objects.filter(study=entry["study"], label=entry["label"]).order_by("started_at", "pk")[1:]
        for number, participant in enumerate(later, start=2):
            Participant.objects.filter(pk=participant.pk).update(label=f"{entry['label'][:230]} (duplicate {number})")
    check_constraints_now(schema_editor)


def check_constraints_now(schema_editor):
    # PostgreSQL defers foreign-key checks of the rows updated above to the end of the transaction, and refuses
    # to ALTER a table while such checks are pending ("pending trigger events"); run them now instead.
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def carry_back(apps, schema_editor):
    # Back to a practice flag and positions numbered within practice and scored trials; catch trials (which the
    # first version did not have) count as scored there, and the bot and pool markings are dropped with their fields.
    Trial = apps.get_model("turing", "Trial")
    Trial.objects.filter(kind="practice").update(practice=True)
    practice_counts = (
        Trial.objects.filter(practice=True).values("participant").annotate(n=Count("pk")).values_list("participant", "n")
    )
    for participant_id, n_practice in practice_counts:
        Trial.objects.filter(participant_id=participant_id, practice=False).update(position=F("position") - n_practice)
    check_constraints_now(schema_editor)


class Migration(migrations.Migration):

    dependencies = [
        ('turing', '0001_initial'),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='trial',
            options={'ordering': ['participant', 'position']},
        ),
        migrations.RemoveConstraint(
            model_name='trial',
            name='one_trial_per_position',
        ),
        migrations.RemoveIndex(
            model_name='stimulus',
            name='turing_stim_study_i_99d27d_idx',
        ),
        migrations.RemoveField(
            model_name='stimulus',
            name='times_assigned',
        ),
        migrations.AddField(
            model_name='participant',
            name='join_key',
            field=models.CharField(blank=True, editable=False, max_length=32, null=True),
        ),
        migrations.AddField(
            model_name='participant',
            name='kind',
            field=models.CharField(choices=[('person', 'Person'), ('bot', 'Rehearsal bot')], default='person', help_text='Bots (simulate_participants) are left out of every report unless asked for.', max_length=10),
        ),
        migrations.AddField(
            model_name='stimulus',
            name='pool',
            field=models.CharField(choices=[('scored', 'Scored'), ('practice', 'Practice'), ('catch', 'Attention check')], default='scored', max_length=10),
        ),
        migrations.AddField(
            model_name='study',
            name='created_before_pools',
            field=models.BooleanField(default=False, editable=False, help_text='Made before practice scenes were kept apart from the scored ones and before the lightness audit: practice images were also scored images, and lightness was never compared.'),
        ),
        migrations.AddField(
            model_name='study',
            name='show_score',
            field=models.BooleanField(default=False, help_text='Tell each participant at the end how many images they judged correctly. Engaging at a poster, but the score is an oracle: a few dozen throwaway joins can learn every image\'s answer from it.'),
        ),
        migrations.AddField(
            model_name='study',
            name='catch_trials',
            field=models.PositiveIntegerField(default=0, help_text='Attention checks per participant: obviously wrong colorizations of reserved scenes.'),
        ),
        migrations.AddField(
            model_name='study',
            name='luminance_mismatch_allowed',
            field=models.BooleanField(default=False, editable=False, help_text='Imported with --allow-luminance-mismatch: generated images may differ from the real photos in lightness, a cue other than colour.'),
        ),
        migrations.AddField(
            model_name='study',
            name='max_participants',
            field=models.PositiveIntegerField(blank=True, help_text='Close joining once this many people have joined (empty: no limit).', null=True),
        ),
        migrations.AddField(
            model_name='trial',
            name='image_token',
            field=models.CharField(editable=False, max_length=32, null=True),
        ),
        migrations.AddField(
            model_name='trial',
            name='kind',
            field=models.CharField(choices=[('practice', 'Practice'), ('scored', 'Scored'), ('catch', 'Attention check')], default='scored', help_text='Practice trials give feedback and are not counted; catch trials are attention checks.', max_length=10),
        ),
        migrations.RunPython(carry_over, carry_back, elidable=False),
        migrations.RemoveField(
            model_name='trial',
            name='practice',
        ),
        migrations.AlterField(
            model_name='trial',
            name='image_token',
            field=models.CharField(default=turing.models.new_token, editable=False, max_length=32, unique=True),
        ),
        migrations.AlterField(
            model_name='participant',
            name='label',
            field=models.CharField(blank=True, help_text='participant_label or PROLIFIC_PID from the join URL.', max_length=255),
        ),
        migrations.AlterField(
            model_name='stimulus',
            name='source',
            field=models.CharField(help_text="'real', the name of the model that generated it, or 'catch' (attention check).", max_length=100),
        ),
        migrations.AlterField(
            model_name='study',
            name='practice_trials',
            field=models.PositiveIntegerField(default=3, help_text='Scenes reserved for practice; every participant practises on each of them once.'),
        ),
        migrations.AlterField(
            model_name='trial',
            name='position',
            field=models.PositiveIntegerField(help_text='1-based order of presentation: practice trials first, then scored and catch trials mixed.'),
        ),
        migrations.AddIndex(
            model_name='stimulus',
            index=models.Index(fields=['study', 'pool', 'source'], name='turing_stim_study_i_6f7a3e_idx'),
        ),
        migrations.AddConstraint(
            model_name='participant',
            constraint=models.UniqueConstraint(condition=models.Q(('label', ''), _negated=True), fields=('study', 'label'), name='one_participant_per_label'),
        ),
        migrations.AddConstraint(
            model_name='participant',
            constraint=models.UniqueConstraint(fields=('study', 'join_key'), name='one_participant_per_join_form'),
        ),
        migrations.AddConstraint(
            model_name='trial',
            constraint=models.UniqueConstraint(fields=('participant', 'position'), name='one_trial_per_position'),
        ),
    ]
