{#- part / whole as a double, null when whole is not positive (no such events: a share is unknown, not 0). -#}
{% macro share(part, whole) -%}
    case when {{ whole }} > 0 then cast({{ part }} as double) / cast({{ whole }} as double) end
{%- endmacro %}
