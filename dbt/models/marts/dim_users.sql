-- One row per user in the night's KYC snapshot, with only banded, non-identifying attributes: the month of
-- registration rather than the day, an account-age band rather than the age, a city tier rather than the
-- city, an occupation group rather than the occupation. Rebuilt whole by each night, as of that night.
with

users as (

    select * from {{ ref('stg_users') }}

),

occupation_groups as (

    select * from {{ ref('occupation_groups') }}

),

scored as (

    select
        user_key,
        segment

    from {{ ref('stg_scores') }}

),

excluded as (

    select distinct user_key from {{ ref('stg_exclusions') }}

),

final as (

    select
        users.user_key,
        cast({{ night() }} as date) as as_of_ds,

        cast({{ dbt.date_trunc('month', 'users.registered_date') }} as date) as registration_cohort,
        {{ tenure_band(months_to_night('users.registered_date')) }} as account_age_band,
        users.city_tier,
        users.is_identity_verified,
        case
            when users.occupation is null then 'not_given'
            else coalesce(occupation_groups.occupation_group, 'other')
        end as occupation_group,
        case
            when scored.segment is not null then scored.segment
            when excluded.user_key is not null then 'excluded'
            else 'not_scored'
        end as segment

    from users
    left join occupation_groups
        on users.occupation = occupation_groups.occupation
    left join scored
        on users.user_key = scored.user_key
    left join excluded
        on users.user_key = excluded.user_key

)

select * from final
