-- A table, not a view like the other feature models: the three feature models and a test read it, and as a view
-- each of them scanned the month of KYC snapshots again (30 million rows at 1,000,000 users).
{{ config(materialized='table') }}

-- Per night, the latest KYC snapshot delivered in the 30 days up to it (an older one is too stale to score on):
-- the same profile the Spark features job reads (spark_jobs/features.py, profile()).
with

nights as (

    {{ feature_nights() }}

),

users as (

    select * from {{ lake_source('users') }}

),

recent as (

    select
        nights.night,
        users.ds,
        users.user_id,
        users.identity_verified,
        users.registered_date,
        users.phone_tenure_months,
        users.address_months

    from nights
    inner join users
        on users.ds <= nights.night
        and users.ds > {{ dbt.dateadd('day', -30, 'nights.night') }}

),

latest_snapshot as (

    select night, max(ds) as ds
    from recent
    group by night

)

select
    recent.night,
    recent.user_id,
    recent.identity_verified,
    recent.registered_date,
    recent.phone_tenure_months,
    recent.address_months

from recent
inner join latest_snapshot
    on recent.night = latest_snapshot.night
    and recent.ds = latest_snapshot.ds
