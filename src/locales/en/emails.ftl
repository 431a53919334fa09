# Emails. The subject gets "[cellqc] " before it; the body ends with a newline.

email-oos-subject = OOS on batch { $batch }: { $test } failed
email-late-oos-subject = URGENT: late OOS on { $status } batch { $batch }: { $test } failed
email-oos-body =
    { $description }

    Batch: { $batch } (status { $status })
    Test: { $test }
    Result: { $value }
    Limit: { $limit }
    Deviation: { $deviation } ({ $severity })

    The result can't be superseded or retested until QA closes the investigation; only a documented assignable cause (invalid_test) invalidates it.
email-late-oos-body = { email-oos-body }

email-excursion-subject = Temperature excursion on batch { $batch }
email-excursion-body =
    { $description }

    Deviation: { $deviation }

    The batch can't be released while the deviation is open.

email-correction-failed-subject = Batch { $batch } does not meet its specification after a correction
email-correction-failed-body =
    The post-release correction "{ $title }" of batch { $batch } ({ $status }) was closed by { $name }: the batch does not meet its specification.

    Root cause: { $root_cause }

    The batch can't be released again; decide at once whether to recall it and who must be told.

email-ready-subject = Batch { $batch } is ready for release
email-ready-body = Every result of batch { $batch } is in, within specification and reviewed, and nothing else blocks its release. A Qualified Person who took no part in its testing can now sign the release.

email-status-subject = Batch { $batch } { $status }
email-status-body = Batch { $batch } was { $status } by { $name } ({ $username }) at { $at }.
email-reason = Reason: { $reason }

email-locked-subject = Account locked: { $username }
email-locked-body =
    The cellqc account `{ $username }` ({ $name }) was locked at { $at } after { $failures } consecutive failed password attempts. It unlocks by itself at { $until }, or an admin can unlock it on the Users page (user id { $id }).

    If the user did not make these attempts, treat this as an attempted unauthorised use (21 CFR 11.300(d)).

email-held-off-subject = Sign-in guesses: { $username } from { $address }
email-held-off-body =
    { $failures } consecutive failed sign-ins for the name `{ $username }` came from { $address }; at { $at } that address was held off that name until { $until }, longer with each further failure. The account is not locked: its holder signs in from elsewhere as usual. (The name may be nobody's: unknown names are held off the same way.)

    If nobody with a right to the account made these attempts, treat this as an attempted unauthorised use (21 CFR 11.300(d)).

email-reset-subject = Your password was reset: { $username }
email-reset-body =
    An administrator, { $admin } ({ $admin_username }), set a new password for your cellqc account `{ $username }` at { $at }. Every session you had open was ended.

    The new password is temporary: you can sign in and read with it, but you sign nothing until you have chosen your own (Account > Password). The administrator tells you the temporary password in person; it is never sent by email.

    If you did not ask for this, tell QA at once.

email-anchor-subject = Audit trail anchor { $at }: root { $short }
email-anchor-body =
    cellqc anchored its audit trail at { $at }.

    Merkle root: { $root }

    { $how }
email-anchor-keep = Keep this email unchanged (a mail archive that the database's operators can't edit): `cellqc audit verify --anchors DIR` with the JSON below saved in DIR proves that no chain was rewritten or cut back since. The signature is checked with the site's public key (GET /api/v1/audit/anchor-key).
email-anchor-too-large = The anchor covers too many chains to be emailed whole: the JSON below is its summary, without the chains' heads that the root and the signature cover. The whole anchor is the file { $file } in the server's anchor directory (CELLQC_ANCHOR_DIR): copy it where the database's operators can't write. Keep this email unchanged: the file's root must be the root above, and `cellqc audit verify --anchors DIR` with the file in DIR proves that no chain was rewritten or cut back since.

email-impact-subject = URGENT: impact on { $status } batch { $batch }: { $title }
email-impact-body =
    { $description }

    Batch: { $batch } (status { $status })
    Deviation: { $deviation } (critical)

    The batch has left quality control. Assess at once whether it must be recalled.
