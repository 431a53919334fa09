# The page shell, shared words and statuses.

nav-label = Main
nav-your-work = Your work
nav-batches = Batches
nav-products = Products
nav-qualifications = Qualifications
nav-instruments = Instruments
nav-materials = Materials
nav-review-queue = Review queue
nav-audit-trail = Audit trail
nav-users = Users
nav-api-docs = API docs
nav-signed-in-as = Signed in as { $username }: change your password
nav-language = Language
nav-language-switch = Switch
nav-sign-out = Sign out

password-temporary-before = Your password was set by an administrator. You can read, but you sign nothing until you
password-temporary-link = choose your own password
password-temporary-after = .

zone-yours = your time, { $zone }
page-of = Page { $page } of { $total }
none = none

error-title-not-found = Not found
error-title-forbidden = Not allowed
error-title-conflict = Not possible now
error-title-too-large = Too large
error-title-bad-request = Could not be read
error-title-not-saved = Not saved
error-title-unavailable = Unavailable for a moment
error-title-other = Refused
error-choose-password = Choose your own password
error-back-to-work = Back to your work
error-the-batches = the batches

refused-no-such-page = There is no such page or record. Check the address, or start again from the batches.
refused-too-large = What was sent is larger than 1 MiB, so nothing was saved. Shorten the text and send it again.
refused-method = This page can't be used that way. Start again from the batches.
refused-unreadable = The address or the form could not be read, so nothing was saved.
refused-unreadable-because = The address or the form could not be read, so nothing was saved ({ $detail }).
refusal-nothing-saved = Nothing was saved.
refusal-nothing-searched = Nothing was searched.
refusal-correct = Correct:
refusal-correct-below = Correct what is marked below.

signing-you-state = By signing you state: “{ $statement }”
signing-you-state-chosen = By signing you state the statement you choose above.

outcome-pass = PASS
outcome-fail = FAIL
result-recorded = Result recorded:
result-recorded-oos = . An OOS investigation was opened and QA notified.

# Statuses, by their stored code (the badge's class stays the code).
status-quarantine = quarantine
status-conditionally-released = conditionally released
status-released = released
status-rejected = rejected
status-recalled = recalled
status-open = open
status-closed = closed
status-recorded = recorded
status-reviewed = reviewed
status-review-rejected = review rejected
status-superseded = superseded
status-invalidated = invalidated
status-draft = draft
status-effective = effective
status-in-service = in service
status-calibration-due = calibration due
status-out-of-service = out of service
status-failed-calibration = failed calibration

# What a signature means: the sentence shown, and recorded, at signing.
statement-reviewed = I have reviewed this result and accept it
statement-review-rejected = I have reviewed this result and reject it
statement-spec-approved = I approve this specification for use
statement-released = I approve this batch for release
statement-conditionally-released = I approve this batch for conditional release before all results are in
statement-rejected = I reject this batch
statement-recalled = I recall this batch
statement-deviation-closed = I close this deviation with the conclusion given
statement-qualification-granted = I confirm this person is trained and qualified to perform this test until the date given
statement-qualification-revoked = I withdraw this person's qualification to perform this test
statement-instrument-returned = I confirm this instrument is fit for use and return it to service
statement-material-released = I release this material lot for use
statement-material-rejected = I reject this material lot
statement-audit-trail-reviewed = I have reviewed every exception in this batch's audit trail up to the entry shown
statement-correction-opened = I open a controlled correction of this result of a decided batch, for the reason given
blocker-correction-failed = the post-release correction "{ $title }" found the batch does not meet its specification
status-invalid-test = invalid test
status-confirmed-oos = confirmed OOS

# Release blockers by code (English pages show the domain's own message).
blocker-missing-result = { $test } ({ $name }) has no valid result
blocker-result-failed = the result of { $test } is out of specification
blocker-result-not-reviewed = the result of { $test } awaits second-person review
blocker-open-deviation = deviation "{ $title }" ({ $id }) is open
blocker-confirmed-oos = deviation "{ $title }" confirmed an OOS: the batch can only be rejected
blocker-in-transit = the batch was shipped and its delivery is not recorded
blocker-expired = the batch expired at { $at }
blocker-parent-not-released = parent batch { $number } is { $status }, not released
blocker-audit-trail-not-reviewed = the product requires a signed review of the batch's audit trail, and there is none
blocker-audit-trail-stale = entry { $seq } of the batch's audit trail is an exception written after its last review: review it again
