-- Every delivered record is accepted, quarantined or dropped as a duplicate.
select
    ds,
    source,
    delivered,
    accepted,
    quarantined,
    duplicates

from {{ ref('row_accounting') }}
where delivered != accepted + quarantined + duplicates
