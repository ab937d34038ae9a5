"""Store sessions: what a read block returns stays usable, and nothing written in it persists."""

from sqlalchemy import func, select

from store.models import Customer


def test_read_results_stay_usable_and_read_writes_roll_back(tau2_store):
    with tau2_store.read() as s:
        customers = s.scalars(select(Customer).order_by(Customer.id).limit(3)).all()
        first_id = customers[0].id
        customers[0].email = "changed-inside-read@example.com"
        s.flush()
    # Loaded attributes are still there after the block (no DetachedInstanceError).
    assert [c.id for c in customers][0] == first_id
    assert all(c.first_name for c in customers)
    with tau2_store.read() as s:
        email = s.scalar(select(Customer.email).where(Customer.id == first_id))
        n = s.scalar(select(func.count()).select_from(Customer))
    assert email != "changed-inside-read@example.com"
    assert n == 500
