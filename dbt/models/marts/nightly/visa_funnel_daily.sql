-- The visa funnel of the night, per destination: how many scored users each condition of the rule in force
-- lets through, how many pass them all, and how the list moved since the previous scored night.
with

rules as (

    select * from {{ ref('int_visa_rules_in_force') }}

),

checks as (

    select * from {{ ref('int_visa_rule_checks') }}

),

changes as (

    select * from {{ ref('visa_eligibility_changes') }}
    where ds = {{ night() }}

),

funnel as (

    select
        destination,
        count(*) as users_evaluated,
        sum(case when passes_min_score then 1 else 0 end) as passing_min_score,
        sum(case when passes_identity then 1 else 0 end) as passing_identity,
        sum(case when passes_court_list then 1 else 0 end) as passing_court_list,
        sum(case when passes_history then 1 else 0 end) as passing_history,
        sum(case when passes_qualifying_nights then 1 else 0 end) as passing_qualifying_nights,
        sum(case when is_eligible then 1 else 0 end) as eligible

    from checks
    group by destination

),

moved as (

    select
        destination,
        sum(case when change = 'added' then 1 else 0 end) as added,
        sum(case when change = 'removed' then 1 else 0 end) as removed

    from changes
    group by destination

),

final as (

    select
        rules.ds,
        rules.destination,
        rules.rule_version,
        rules.min_score,
        cast(coalesce(funnel.users_evaluated, 0) as bigint) as users_evaluated,
        cast(coalesce(funnel.passing_min_score, 0) as bigint) as passing_min_score,
        cast(coalesce(funnel.passing_identity, 0) as bigint) as passing_identity,
        cast(coalesce(funnel.passing_court_list, 0) as bigint) as passing_court_list,
        cast(coalesce(funnel.passing_history, 0) as bigint) as passing_history,
        cast(coalesce(funnel.passing_qualifying_nights, 0) as bigint) as passing_qualifying_nights,
        cast(coalesce(funnel.eligible, 0) as bigint) as eligible,
        cast(coalesce(moved.added, 0) as bigint) as added,
        cast(coalesce(moved.removed, 0) as bigint) as removed

    from rules
    left join funnel
        on rules.destination = funnel.destination
    left join moved
        on rules.destination = moved.destination

)

select * from final
