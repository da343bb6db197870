-- Every delivered record is accepted, quarantined, dropped as a duplicate or held.
select
    ds,
    source,
    delivered,
    accepted,
    quarantined,
    duplicates,
    held

from {{ ref('row_accounting') }}
where delivered != accepted + quarantined + duplicates + held
