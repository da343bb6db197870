{{ config(materialized='view') }}

with

lake_accounting as (

    select * from {{ lake_source('accounting') }}
    where ds = {{ night() }}

),

renamed as (

    select
        ds,
        cast(source as {{ string_type() }}) as source_name,
        cast(file as {{ string_type() }}) as file_name,

        cast(delivered as bigint) as delivered,
        cast(accepted as bigint) as accepted,
        cast(quarantined as bigint) as quarantined,
        cast(duplicates as bigint) as duplicates

    from lake_accounting

)

select * from renamed
