// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

interface IRatioProvider {
  function getPooledEthByShares(uint256 sharesAmount) external view returns (uint256);
}

interface IBaseAggregator {
  function latestAnswer() external view returns (int256);
  function decimals() external view returns (uint8);
}

interface IRiskAdminACL {
  function isRiskAdmin(address admin) external view returns (bool);
  function isPoolAdmin(address admin) external view returns (bool);
}

/// @title CappedRatioAdapter
/// @notice A capped-ratio ("CAPO") price source for an LST, following the published formula:
///         price = baseFeed * min(liveRatio, snapshotRatio + growthPerSecond * (now - snapshotTs)) / 1e18.
///         The cap moves every second with no event; only `setCapParameters` emits one.
///         As on mainnet, nothing checks that the new cap is above the live ratio.
contract CappedRatioAdapter {
  uint256 public constant PERCENTAGE_FACTOR = 1e4;
  uint256 public constant SECONDS_PER_YEAR = 365 days;
  uint8 public constant RATIO_DECIMALS = 18;

  IBaseAggregator public immutable BASE_TO_USD_AGGREGATOR;
  IRatioProvider public immutable RATIO_PROVIDER;
  IRiskAdminACL public immutable ACL_MANAGER;
  uint8 public immutable DECIMALS;
  uint48 public immutable MINIMUM_SNAPSHOT_DELAY;
  string public description;

  uint104 private _snapshotRatio;
  uint48 private _snapshotTimestamp;
  uint104 private _maxRatioGrowthPerSecond;
  uint16 private _maxYearlyRatioGrowthPercent;

  event CapParametersUpdated(
    uint256 snapshotRatio,
    uint256 snapshotTimestamp,
    uint256 maxRatioGrowthPerSecond,
    uint16 maxYearlyRatioGrowthPercent
  );

  error CallerIsNotRiskOrPoolAdmin();
  error SnapshotRatioIsZero();
  error SnapshotMayOverflowSoon(uint104 snapshotRatio, uint16 maxYearlyRatioGrowthPercent);
  error InvalidRatioTimestamp(uint48 timestamp);

  constructor(
    address aclManager,
    address baseAggregator,
    address ratioProvider,
    string memory pairDescription,
    uint48 minimumSnapshotDelay,
    uint104 snapshotRatio,
    uint48 snapshotTimestamp,
    uint16 maxYearlyRatioGrowthPercent
  ) {
    ACL_MANAGER = IRiskAdminACL(aclManager);
    BASE_TO_USD_AGGREGATOR = IBaseAggregator(baseAggregator);
    RATIO_PROVIDER = IRatioProvider(ratioProvider);
    DECIMALS = IBaseAggregator(baseAggregator).decimals();
    MINIMUM_SNAPSHOT_DELAY = minimumSnapshotDelay;
    description = pairDescription;
    _applyCapParameters(snapshotRatio, snapshotTimestamp, maxYearlyRatioGrowthPercent);
  }

  function decimals() external view returns (uint8) {
    return DECIMALS;
  }

  function getSnapshotRatio() external view returns (uint256) {
    return _snapshotRatio;
  }

  function getSnapshotTimestamp() external view returns (uint256) {
    return _snapshotTimestamp;
  }

  function getMaxRatioGrowthPerSecond() external view returns (uint256) {
    return _maxRatioGrowthPerSecond;
  }

  function getMaxYearlyGrowthRatePercent() external view returns (uint256) {
    return _maxYearlyRatioGrowthPercent;
  }

  /// @notice The live (uncapped) ratio, 18 decimals.
  function getRatio() public view returns (int256) {
    return int256(RATIO_PROVIDER.getPooledEthByShares(1e18));
  }

  /// @notice The ratio cap at the current block time, 18 decimals.
  function getMaxRatio() public view returns (int256) {
    return int256(uint256(_snapshotRatio) + uint256(_maxRatioGrowthPerSecond) * (block.timestamp - _snapshotTimestamp));
  }

  function isCapped() external view returns (bool) {
    return getRatio() > getMaxRatio();
  }

  function latestAnswer() external view returns (int256) {
    int256 ratio = getRatio();
    int256 basePrice = BASE_TO_USD_AGGREGATOR.latestAnswer();
    if (basePrice <= 0 || ratio <= 0) {
      return 0;
    }
    int256 maxRatio = getMaxRatio();
    if (maxRatio < ratio) {
      ratio = maxRatio;
    }
    return (basePrice * ratio) / int256(10 ** RATIO_DECIMALS);
  }

  function setCapParameters(uint104 snapshotRatio, uint48 snapshotTimestamp, uint16 maxYearlyRatioGrowthPercent) external {
    if (!ACL_MANAGER.isRiskAdmin(msg.sender) && !ACL_MANAGER.isPoolAdmin(msg.sender)) {
      revert CallerIsNotRiskOrPoolAdmin();
    }
    _applyCapParameters(snapshotRatio, snapshotTimestamp, maxYearlyRatioGrowthPercent);
  }

  function _applyCapParameters(uint104 snapshotRatio, uint48 snapshotTimestamp, uint16 maxYearlyRatioGrowthPercent) internal {
    if (snapshotRatio == 0) {
      revert SnapshotRatioIsZero();
    }
    // The ratio must not be able to overflow uint104 within three years of growth.
    if ((uint256(snapshotRatio) * maxYearlyRatioGrowthPercent * 3) / PERCENTAGE_FACTOR > type(uint104).max) {
      revert SnapshotMayOverflowSoon(snapshotRatio, maxYearlyRatioGrowthPercent);
    }
    // Strictly newer than the stored snapshot, and at least the minimum delay in the past.
    if (
      _snapshotTimestamp >= snapshotTimestamp ||
      uint256(snapshotTimestamp) + MINIMUM_SNAPSHOT_DELAY > block.timestamp
    ) {
      revert InvalidRatioTimestamp(snapshotTimestamp);
    }
    _snapshotRatio = snapshotRatio;
    _snapshotTimestamp = snapshotTimestamp;
    _maxYearlyRatioGrowthPercent = maxYearlyRatioGrowthPercent;
    _maxRatioGrowthPerSecond = uint104(
      (uint256(snapshotRatio) * maxYearlyRatioGrowthPercent) / PERCENTAGE_FACTOR / SECONDS_PER_YEAR
    );
    emit CapParametersUpdated(snapshotRatio, snapshotTimestamp, _maxRatioGrowthPerSecond, maxYearlyRatioGrowthPercent);
  }
}
