-- How the night's scores are spread, per segment and tier, with 'all' rows for each segment, each tier and
-- the whole night (the percentiles the night report draws, kept night by night).
with

scores as (

    select * from {{ ref('int_scores_tiered') }}

),

final as (

    select
        {{ night() }} as ds,
        coalesce(segment, 'all') as segment,
        coalesce(tier, 'all') as tier,
        cast(count(*) as bigint) as users,
        avg(cast(score as double)) as mean_score,
        cast(percentile_cont(0.1) within group (order by score) as double) as p10_score,
        cast(percentile_cont(0.5) within group (order by score) as double) as p50_score,
        cast(percentile_cont(0.9) within group (order by score) as double) as p90_score,
        min(score) as min_score,
        max(score) as max_score,
        cast(sum(case when score >= 750 then 1 else 0 end) as bigint) as users_750_or_more,
        avg(case when score >= 750 then cast(1 as double) else cast(0 as double) end) as share_750_or_more

    from scores
    group by grouping sets ((segment, tier), (segment), (tier), ())

)

select * from final
