"""The models' choices are the vocabulary's words, in the vocabulary's order."""

from turing import vocabulary
from turing.models import Participant, Pool, Trial


def test_the_models_choices_are_the_vocabulary():
    assert tuple(Pool.values) == vocabulary.POOLS
    assert tuple(Trial.Kind.values) == vocabulary.TRIAL_KINDS
    assert tuple(Participant.Group.values) == vocabulary.GROUPS
    assert tuple(Participant.Kind.values) == vocabulary.PARTICIPANT_KINDS
    assert tuple(Participant.Cohort.values) == vocabulary.COHORTS
    assert tuple(Participant.ButtonOrder.values) == tuple(vocabulary.BUTTON_ORDERS)
    assert Trial._meta.get_field("answer").choices == list(vocabulary.ANSWER_CHOICES)
    assert Trial._meta.get_field("generated_side").choices == list(vocabulary.SIDE_CHOICES)
