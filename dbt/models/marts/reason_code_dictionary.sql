with

registry as (

    select * from {{ ref('feature_registry') }}

),

final as (

    select
        reason_code,
        factor,
        description_en,
        description_zh,
        feature,
        definition,
        unit,
        window_days

    from registry

)

select * from final
