{{ config(replaces_caught_up_days=true) }}

with

accounting as (

    select * from {{ ref('stg_accounting') }}

),

per_source as (

    select
        ds,
        source_name as source,
        sum(delivered) as delivered,
        sum(accepted) as accepted,
        sum(quarantined) as quarantined,
        sum(duplicates) as duplicates,
        sum(held) as held,
        max(hold_reason) as hold_reason,
        count(*) as files

    from accounting
    group by
        ds,
        source_name

),

final as (

    select
        ds,
        source,
        cast(delivered as bigint) as delivered,
        cast(accepted as bigint) as accepted,
        cast(quarantined as bigint) as quarantined,
        cast(duplicates as bigint) as duplicates,
        cast(held as bigint) as held,
        cast(hold_reason as {{ string_type() }}) as hold_reason,
        cast(files as integer) as files,
        cast(quarantined as double) / nullif(delivered, 0) as quarantine_share

    from per_source

)

select * from final
