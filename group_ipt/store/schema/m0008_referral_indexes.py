"""Indexes for the referrals of a national-sized database (found with the generator's referrals)."""

SQL = """
-- A referral's follow-ups (its page, the home page's "next follow-up due", the indicators'
-- "open referrals with an overdue follow-up"): referrals.home_summary took 18.6 s for one
-- site of a 100,000-participant programme without it, 0.05 s with it.
create index if not exists referral_followups_by_referral on referral_followups(referral_id, done_on, due_on);
-- The referral a screening raised (screening page, referrals.for_screening) without
-- reading every referral.
create index if not exists referrals_by_screening on referrals(screening_id) where screening_id is not null;
"""
