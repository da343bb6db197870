with

exclusions as (

    select * from {{ ref('stg_exclusions') }}

),

final as (

    select distinct
        ds,
        user_key,
        exclusion_code

    from exclusions

)

select * from final
