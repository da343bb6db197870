{{ config(materialized='view') }}

with

lake_accounting as (

    select * from {{ lake_source('accounting') }}
    -- tonight's deliveries, and earlier days the night caught up (late, or released from a hold)
    where ds = {{ night() }} or ingested_on = '{{ night_ds() }}'

),

renamed as (

    select
        ds,
        cast(source as {{ string_type() }}) as source_name,
        cast(file as {{ string_type() }}) as file_name,

        cast(delivered as bigint) as delivered,
        cast(accepted as bigint) as accepted,
        cast(quarantined as bigint) as quarantined,
        cast(duplicates as bigint) as duplicates,
        cast(coalesce(held, 0) as bigint) as held,
        cast(nullif(hold_reason, '') as {{ string_type() }}) as hold_reason

    from lake_accounting

)

select * from renamed
