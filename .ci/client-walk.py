"""A short integration run through the Python client generated from the
served OpenAPI document (by .ci/generated-client): sign in, create a batch,
record a result, review it, read the release readiness, export the history.

Each step asserts what the server answered, through the client's own
models; any unexpected answer fails the run. Python 3, the generated
package `cellqc_client` on sys.path, the demo data loaded.

    python3 client-walk.py BASE_URL DEMO_PASSWORD
"""

import datetime
import sys
import uuid

from cellqc_client import AuthenticatedClient, Client
from cellqc_client.api.audit import batch_history
from cellqc_client.api.auth import login
from cellqc_client.api.batches import create_batch
from cellqc_client.api.products import list_products
from cellqc_client.api.release import release_readiness
from cellqc_client.api.results import record_result, review_result
from cellqc_client.models import (
    BatchHistory,
    BatchView,
    CreateBatch,
    Decision,
    LoginRequest,
    LoginResponse,
    PageProductView,
    Readiness,
    RecordResult,
    ResultView,
    ReviewResult,
)

base, password = sys.argv[1], sys.argv[2]
now = datetime.datetime.now(datetime.timezone.utc)


def signed_in(username):
    answer = login.sync(client=Client(base_url=base), body=LoginRequest(username=username, password=password))
    assert isinstance(answer, LoginResponse), f"sign-in of {username}: {answer}"
    return AuthenticatedClient(base_url=base, token=answer.access_token)


tech = signed_in("tech")
products = list_products.sync(client=tech)
assert isinstance(products, PageProductView), products
msc = next(p for p in products.items if p.code == "UCMSC-INJ")

number = f"CLIENT-{uuid.uuid4().hex[:8].upper()}"
batch = create_batch.sync(
    client=tech,
    body=CreateBatch(
        batch_number=number,
        product_id=msc.id,
        manufactured_at=now - datetime.timedelta(days=1),
        expires_at=now + datetime.timedelta(days=30),
    ),
)
assert isinstance(batch, BatchView), f"create batch: {batch}"
assert batch.batch_number == number and batch.status.value == "quarantine", batch
print(f"created batch {number} ({batch.id})")

result = record_result.sync(
    batch.id,
    client=tech,
    body=RecordResult(test_code="DOSE", value="1.1e8", performed_at=now - datetime.timedelta(minutes=5)),
)
assert isinstance(result, ResultView), f"record result: {result}"
assert result.outcome.value == "pass" and result.status.value == "recorded", result
print(f"recorded DOSE {result.value}: {result.outcome.value}")

reviewer = signed_in("reviewer")
reviewed = review_result.sync(result.id, client=reviewer, body=ReviewResult(decision=Decision.ACCEPT, password=password))
assert isinstance(reviewed, ResultView), f"review: {reviewed}"
assert reviewed.status.value == "reviewed", reviewed
print(f"reviewed by {reviewed.signatures[0].signer.full_name}")

qa = signed_in("qa")
readiness = release_readiness.sync(batch.id, client=qa)
assert isinstance(readiness, Readiness), f"readiness: {readiness}"
assert readiness.releasable is False, readiness
missing = sorted(b.test_code for b in readiness.blockers if b.code.value == "missing_result")
assert "DOSE" not in missing and "VIAB" in missing, missing
print(f"not releasable: {len(missing)} results missing")

auditor = signed_in("auditor")
history = batch_history.sync(batch.id, client=auditor)
assert isinstance(history, BatchHistory), f"history: {history}"
actions = [e.action for e in history.items]
assert actions[:3] == ["batch.created", "result.recorded", "result.reviewed"], actions
for before, entry in zip(history.items, history.items[1:]):
    assert entry.prev_hash == before.hash_ and entry.seq == before.seq + 1, entry
# The CSV export is the same operation with ?format=csv; the client's own
# HTTP session (its base URL and token) fetches it as text.
csv = auditor.get_httpx_client().get(f"/api/v1/batches/{batch.id}/history", params={"format": "csv"})
assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv"), csv
assert b"result.reviewed" in csv.content, csv.content
print(f"history: {len(actions)} entries, each linked to the one before; CSV {len(csv.content)} bytes")
print("client walk: OK")
