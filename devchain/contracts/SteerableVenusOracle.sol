// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title SteerableVenusOracle
/// @notice A price oracle with the four functions a Venus isolated-pools Comptroller calls on its
///         ResilientOracle (`getUnderlyingPrice`, `getPrice`, `updatePrice`, `updateAssetPrice`),
///         whose prices the owner sets directly. The compound-v2 devchain scenario uses it to post a
///         misconfigured price and then the fix. Written for this project; only the interface is Venus'.
/// @dev Prices are in the Compound convention: USD x 1e(36 - underlying decimals) per whole
///      underlying unit. Storage layout is part of the interface (the judge overrides slot 0's
///      entry to evaluate the protocol under the true price): slot 0 `underlyingPrice[vToken]`,
///      slot 1 `assetPrice[asset]`, slot 2 `owner`.
contract SteerableVenusOracle {
  mapping(address => uint256) public underlyingPrice;
  mapping(address => uint256) public assetPrice;
  address public owner;

  /// @notice One price set: the market, its underlying, the price before and after.
  event UnderlyingPriceSet(address indexed vToken, address indexed asset, uint256 previousPrice, uint256 newPrice);

  error NotOwner(address caller);

  constructor() {
    owner = msg.sender;
  }

  /// @notice Sets the price of market `vToken` (whose underlying is `asset`) to `price`.
  function setUnderlyingPrice(address vToken, address asset, uint256 price) external {
    if (msg.sender != owner) revert NotOwner(msg.sender);
    uint256 previous = underlyingPrice[vToken];
    underlyingPrice[vToken] = price;
    assetPrice[asset] = price;
    emit UnderlyingPriceSet(vToken, asset, previous, price);
  }

  function getUnderlyingPrice(address vToken) external view returns (uint256) {
    return underlyingPrice[vToken];
  }

  function getPrice(address asset) external view returns (uint256) {
    return assetPrice[asset];
  }

  /// @notice The Comptroller asks the oracle to refresh before it reads; set prices need no refresh.
  function updatePrice(address) external {}

  function updateAssetPrice(address) external {}
}
