-- The share of the night's scored users at or above each destination's minimum score (the rule version in
-- force that night), per segment and tier, with 'all' rows as in score_distribution_daily.
with

scores as (

    select * from {{ ref('int_scores_tiered') }}

),

rules as (

    select * from {{ ref('int_visa_rules_in_force') }}

),

final as (

    select
        {{ night() }} as ds,
        rules.destination,
        rules.rule_version,
        rules.min_score,
        coalesce(scores.segment, 'all') as segment,
        coalesce(scores.tier, 'all') as tier,
        cast(count(*) as bigint) as users,
        cast(sum(case when scores.score >= rules.min_score then 1 else 0 end) as bigint) as users_at_or_above,
        avg(case when scores.score >= rules.min_score then cast(1 as double) else cast(0 as double) end) as share_at_or_above

    from scores
    cross join rules
    group by grouping sets (
        (rules.destination, rules.rule_version, rules.min_score, scores.segment, scores.tier),
        (rules.destination, rules.rule_version, rules.min_score, scores.segment),
        (rules.destination, rules.rule_version, rules.min_score, scores.tier),
        (rules.destination, rules.rule_version, rules.min_score)
    )

)

select * from final
