"""The words a study is stored in: answers, stimulus sources, pools, trial kinds, groups, participant kinds,
cohorts, sides and button orders, each defined once.

Plain Python, no Django, so that turing.analysis (which runs on exported tables, without a database) and the
models (whose TextChoices are built from these values, and labelled there) share them. The answers and sides
carry their labels here too: they are the vote buttons of every protocol (turing.protocols).
"""

# Answers: what a trial's stimulus was judged. Under every protocol a model's fooling rate is the share of its
# trials answered REAL (turing.protocols).
REAL = "real"
GENERATED = "generated"
ANSWER_CHOICES = ((REAL, "Real"), (GENERATED, "Generated"))
ANSWERS = (REAL, GENERATED)

# Orders of the two answer buttons of a single-image trial, first (left, or top where they stack) to second:
# drawn per participant (turing.participant.enrollment), so that a preference for a position is not a
# preference for one answer.
REAL_FIRST = "real-first"
GENERATED_FIRST = "generated-first"
BUTTON_ORDERS = {REAL_FIRST: (REAL, GENERATED), GENERATED_FIRST: (GENERATED, REAL)}

# Stimulus sources besides the models' names: REAL photos, and CATCH, the attention-check stimuli
# (turing.stimuli.normalize.catch_version of a real photo). Neither may name a model.
CATCH = "catch"
NOT_MODELS = frozenset({REAL, CATCH})

# Pools: what a scene's stimuli are for (turing.models explains why they are kept apart).
SCORED = "scored"
PRACTICE = "practice"
POOLS = (SCORED, PRACTICE, CATCH)

# Trial kinds share the pools' words: a practice trial shows a practice stimulus, and so on. Presentation
# order: practice first.
TRIAL_KINDS = (PRACTICE, SCORED, CATCH)

# Groups: control participants see only real photos (turing.participant.enrollment).
TREATMENT = "treatment"
CONTROL = "control"
GROUPS = (TREATMENT, CONTROL)

# Participant kinds: rehearsal bots (simulate_participants) are left out of reports unless asked for.
PERSON = "person"
BOT = "bot"
PARTICIPANT_KINDS = (PERSON, BOT)

# Cohorts: how a participant came (turing.participant.crowd).
POSTER = "poster"
KIOSK = "kiosk"
PROLIFIC = "prolific"
MTURK = "mturk"
LINK = "link"
COHORTS = (POSTER, KIOSK, PROLIFIC, MTURK, LINK)

# Expertise: the answer to a study's expertise question (turing.participant.forms), stored True or False, or
# None when not asked or not answered; reports and exports write it as these words.
YES = "yes"
NO = "no"
NOT_ANSWERED = "not answered"
EXPERTISE = (YES, NO, NOT_ANSWERED)
EXPERTISE_WORD = {True: YES, False: NO}

# Sides of a two-image trial (protocol 2afc): where the generated image was, and the buttons' values.
LEFT = "left"
RIGHT = "right"
SIDE_CHOICES = ((LEFT, "Left"), (RIGHT, "Right"))
