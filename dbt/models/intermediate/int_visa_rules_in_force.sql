-- The version of each destination's visa rule that applies tonight:
-- valid_from <= ds and (valid_to is null or ds < valid_to).
with

rules as (

    select * from {{ ref('visa_rules') }}

),

in_force as (

    select
        {{ night() }} as ds,
        destination,
        rule_version,
        min_score,
        require_identity_verified,
        exclude_court_listed,
        min_history_days,
        min_qualifying_nights,
        valid_from,
        valid_to

    from rules
    where valid_from <= {{ night() }}
        and (valid_to is null or {{ night() }} < valid_to)

)

select * from in_force
