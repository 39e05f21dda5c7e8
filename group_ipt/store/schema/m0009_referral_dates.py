"""Indexes for the referrals raised in a period (indicators), measured on 100,000 participants."""

SQL = """
-- Screenings given in a period, whatever the occasion: the referrals they raised
-- (indicators.Report._referral_query). Counting a quarter's referrals read all 27,000 of
-- them through their screening (275 ms); with these two indexes it reads the quarter's.
create index if not exists screenings_by_date on screenings(administered_on, id);  -- covering: no row read
-- Referrals made by hand (no screening) by the day they were made.
create index if not exists referrals_by_day_without_screening
    on referrals(substr(created_at, 1, 10)) where screening_id is null;
"""
