with

codes as (

    select * from {{ ref('exclusion_codes') }}

),

final as (

    select
        exclusion_code,
        description_en,
        description_zh

    from codes

)

select * from final
