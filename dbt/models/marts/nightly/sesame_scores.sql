with

tiered as (

    select * from {{ ref('int_scores_tiered') }}

),

final as (

    select
        ds,
        user_key,
        segment,
        score,
        tier,

        credit_history_score,
        behavior_preference_score,
        fulfillment_capacity_score,
        identity_traits_score,
        social_connections_score,

        credit_history_points,
        behavior_preference_points,
        fulfillment_capacity_points,
        identity_traits_points,
        social_connections_points,

        reason_codes,
        model_version,
        city_tier

    from tiered

)

select * from final
