-- Tonight's scores with their tier and the user's city tier.
with

scores as (

    select * from {{ ref('stg_scores') }}

),

users as (

    select
        user_key,
        city_tier

    from {{ ref('stg_users') }}

),

tiered as (

    select
        scores.ds,
        scores.user_key,
        scores.segment,
        scores.score,
        {{ score_tier('scores.score') }} as tier,

        scores.credit_history_score,
        scores.behavior_preference_score,
        scores.fulfillment_capacity_score,
        scores.identity_traits_score,
        scores.social_connections_score,

        scores.credit_history_points,
        scores.behavior_preference_points,
        scores.fulfillment_capacity_points,
        scores.identity_traits_points,
        scores.social_connections_points,

        scores.reason_codes,
        scores.model_version,
        users.city_tier

    from scores
    left join users
        on scores.user_key = users.user_key

)

select * from tiered
