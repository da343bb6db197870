{{
    config(
        materialized='incremental',
        incremental_strategy=night_slice_strategy(),
        on_schema_change='append_new_columns'
    )
}}

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
