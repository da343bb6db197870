with

source as (

    select * from {{ lake_source('scores') }}
    where ds = {{ night() }}

),

renamed as (

    select
        ds,
        {{ pseudonymize('user_id') }} as user_key,
        cast(segment as {{ string_type() }}) as segment,

        cast(score as integer) as score,

        cast(credit_history_score as double) as credit_history_score,
        cast(behavior_preference_score as double) as behavior_preference_score,
        cast(fulfillment_capacity_score as double) as fulfillment_capacity_score,
        cast(identity_traits_score as double) as identity_traits_score,
        cast(social_connections_score as double) as social_connections_score,

        cast(credit_history_points as integer) as credit_history_points,
        cast(behavior_preference_points as integer) as behavior_preference_points,
        cast(fulfillment_capacity_points as integer) as fulfillment_capacity_points,
        cast(identity_traits_points as integer) as identity_traits_points,
        cast(social_connections_points as integer) as social_connections_points,

        cast(reason_codes as {{ string_array_type() }}) as reason_codes,
        cast(model_version as {{ string_type() }}) as model_version

    from source

)

select * from renamed
